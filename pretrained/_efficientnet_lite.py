"""EfficientNet-Lite in TensorFlow, built from a PyTorch state dict, split into parts.

Each BatchNorm is folded into the convolution before it (exact in inference mode), so every
part is a chain of convolution + bias (+ relu6) with plain ``tf.Variable`` weights. Parts are
the stem, each MBConv block and the head conv, in order, so a caller can freeze the bottom
parts and fine-tune the top ones. Layout is NHWC; padding is TF ``"SAME"``, which is what the
reference implementation's static padding (``pad // 2`` before, the rest after) reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from pretrained._lite_layout import HEAD_FILTERS, STEM_FILTERS, BlockArgs, block_layout
from transfer_automl.errors import BackboneError

BN_EPSILON = 1e-3


class ConvBN(tf.Module):
    """A convolution (dense or depthwise) with a folded BatchNorm and optional relu6."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, stride: int, depthwise: bool,
                 activation: bool, name: str):
        super().__init__(name=name)
        self.kernel = tf.Variable(kernel, trainable=True, name="kernel")
        self.bias = tf.Variable(bias, trainable=True, name="bias")
        self.stride = stride
        self.depthwise = depthwise
        self.activation = activation

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        strides = [1, self.stride, self.stride, 1]
        if self.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.kernel, strides, padding="SAME")
        else:
            y = tf.nn.conv2d(x, self.kernel, strides, padding="SAME")
        y = tf.nn.bias_add(y, self.bias)
        return tf.nn.relu6(y) if self.activation else y


class MBConvBlock(tf.Module):
    """Inverted residual block: optional 1x1 expand, depthwise conv, 1x1 linear project."""

    def __init__(self, args: BlockArgs, convs: list[ConvBN], name: str):
        super().__init__(name=name)
        self.convs = convs
        self.has_skip = args.has_skip
        self.in_channels = args.in_filters
        self.out_channels = args.out_filters

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = x
        for conv in self.convs:
            y = conv(y)
        return y + x if self.has_skip else y


class EfficientNetLite(tf.Module):
    """The feature extractor as an ordered list of parts, plus the ImageNet classifier.

    Attributes:
        parts: Stem, MBConv blocks and head conv, in order; each maps NHWC to NHWC.
        part_channels: Input channels of each part, then the output channels of the last.
        fc_kernel: Classifier weights ``[1280, 1000]``.
        fc_bias: Classifier bias ``[1000]``.
    """

    def __init__(self, parts: list[tf.Module], part_channels: list[int], fc_kernel: np.ndarray,
                 fc_bias: np.ndarray, name: str = "efficientnet_lite"):
        super().__init__(name=name)
        self.parts = parts
        self.part_channels = part_channels
        self.fc_kernel = tf.Variable(fc_kernel, trainable=True, name="fc_kernel")
        self.fc_bias = tf.Variable(fc_bias, trainable=True, name="fc_bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """Map scaled RGB ``[B, H, W, 3]`` to the final feature map ``[B, h, w, 1280]``."""
        for part in self.parts:
            x = part(x)
        return x

    def classify(self, features: tf.Tensor) -> tf.Tensor:
        """Map a feature map to ImageNet logits (global average pool + linear layer)."""
        pooled = tf.reduce_mean(features, axis=[1, 2])
        return tf.matmul(pooled, self.fc_kernel) + self.fc_bias


def build_efficientnet_lite(state: Mapping[str, np.ndarray], width: float, depth: float,
                            name: str = "efficientnet_lite") -> EfficientNetLite:
    """Build the TensorFlow model from a lukemelas-style EfficientNet-Lite state dict.

    Args:
        state: Parameter name -> array, as read by :func:`read_state_dict`.
        width: Width coefficient of the variant (1.0 for lite0 and lite1).
        depth: Depth coefficient of the variant (1.0 for lite0).
        name: Name of the returned module.

    Raises:
        BackboneError: If a parameter is missing or has an unexpected shape.
    """
    layout = block_layout(width, depth)
    stem = _conv_bn(state, "_conv_stem", "_bn0", stride=2, depthwise=False, activation=True,
                    name="stem")
    _check_shape(state, "_conv_stem.weight", (STEM_FILTERS, 3, 3, 3))
    parts: list[tf.Module] = [stem]
    channels = [3]
    for i, args in enumerate(layout):
        parts.append(_block(state, i, args))
        channels.append(args.in_filters)
    _check_shape(state, "_conv_head.weight", (HEAD_FILTERS, layout[-1].out_filters, 1, 1))
    parts.append(_conv_bn(state, "_conv_head", "_bn1", stride=1, depthwise=False,
                          activation=True, name="head"))
    channels += [layout[-1].out_filters, HEAD_FILTERS]
    extra = {k.split(".")[1] for k in state if k.startswith("_blocks.")} - {
        str(i) for i in range(len(layout))}
    if extra:
        raise BackboneError(f"checkpoint has blocks {sorted(extra)} beyond the expected "
                            f"{len(layout)}; wrong width/depth coefficients?")
    fc_kernel = _get(state, "_fc.weight").T.copy()
    return EfficientNetLite(parts, channels, fc_kernel, _get(state, "_fc.bias"), name=name)


def _block(state: Mapping[str, np.ndarray], index: int, args: BlockArgs) -> MBConvBlock:
    prefix = f"_blocks.{index}."
    hidden = args.in_filters * args.expand
    convs = []
    if args.expand != 1:
        _check_shape(state, prefix + "_expand_conv.weight", (hidden, args.in_filters, 1, 1))
        convs.append(_conv_bn(state, prefix + "_expand_conv", prefix + "_bn0", 1, False, True,
                              "expand"))
    _check_shape(state, prefix + "_depthwise_conv.weight", (hidden, 1, args.kernel, args.kernel))
    convs.append(_conv_bn(state, prefix + "_depthwise_conv", prefix + "_bn1", args.stride, True,
                          True, "depthwise"))
    _check_shape(state, prefix + "_project_conv.weight", (args.out_filters, hidden, 1, 1))
    convs.append(_conv_bn(state, prefix + "_project_conv", prefix + "_bn2", 1, False, False,
                          "project"))
    return MBConvBlock(args, convs, name=f"block{index}")


def _conv_bn(state: Mapping[str, np.ndarray], conv: str, bn: str, stride: int, depthwise: bool,
             activation: bool, name: str) -> ConvBN:
    kernel, bias = fold_batch_norm(
        _get(state, conv + ".weight"), _get(state, bn + ".weight"), _get(state, bn + ".bias"),
        _get(state, bn + ".running_mean"), _get(state, bn + ".running_var"))
    # PyTorch OIHW -> TF HWIO; a depthwise kernel [C, 1, kh, kw] -> [kh, kw, C, 1].
    kernel = kernel.transpose(2, 3, 1, 0) if not depthwise else kernel.transpose(2, 3, 0, 1)
    return ConvBN(np.ascontiguousarray(kernel), bias, stride, depthwise, activation, name)


def fold_batch_norm(kernel: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray,
                    var: np.ndarray, eps: float = BN_EPSILON) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode BatchNorm into the preceding bias-free conv (OIHW kernel).

    Returns:
        ``(kernel * scale, beta - mean * scale)`` with ``scale = gamma / sqrt(var + eps)``
        broadcast over the output channel, computed in float64 and returned as float32.
    """
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + eps)
    folded = kernel.astype(np.float64) * scale[:, None, None, None]
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def _get(state: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    try:
        return np.asarray(state[key], dtype=np.float32)
    except KeyError:
        raise BackboneError(f"checkpoint has no parameter {key!r}; not an EfficientNet-Lite "
                            f"state dict?") from None


def _check_shape(state: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...]) -> None:
    actual = tuple(_get(state, key).shape)
    if actual != shape:
        raise BackboneError(f"checkpoint parameter {key!r} has shape {actual}, expected {shape}; "
                            f"wrong width/depth coefficients for this checkpoint?")
