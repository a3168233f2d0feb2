"""cg.onnx.export: models exported, checked by onnx.checker and run by onnxruntime against
clgraph's own forward (at the traced shapes, and at other sizes along dynamic axes); op
rows one by one; the errors for what the exporter cannot write."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import clgraph as cg
import clgraph.nn.functional as F
from clgraph import nn
from clgraph.onnx.record import flatten


def _session(proto):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _check(model, args, names, *more_args, rtol=1e-4, atol=1e-5, **kw):
    """Export ``model`` on ``args``, then compare onnxruntime with clgraph on ``args`` and
    on each of ``more_args``; returns the model proto."""
    proto = cg.onnx.export(model, args, None, input_names=names, **kw)
    onnx.checker.check_model(proto, full_check=True)
    sess = _session(proto)
    for a in (args, *more_args):
        got = sess.run(None, {n: t.numpy() for n, t in zip(names, a)})
        with cg.no_grad():
            want = [t.detach().numpy() for t in flatten(model(*a))]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype)
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return proto


def _ops(proto) -> set:
    return {n.op_type for n in proto.graph.node}


def _dims(info) -> list:
    return [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]


# --- models -------------------------------------------------------------------------------


def test_mlp_dynamic_batch_to_a_file(tmp_path):
    cg.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 16),
                          nn.Tanh(), nn.Linear(16, 5), nn.LogSoftmax(dim=1))
    model.train()  # exported in eval mode (dropout is the identity), then restored
    path = tmp_path / "mlp.onnx"
    proto = cg.onnx.export(model, (cg.randn(4, 12),), str(path), input_names=["x"],
                           output_names=["logp"],
                           dynamic_axes={"x": {0: "batch"}, "logp": {0: "batch"}})
    assert model.training and all(m.training for m in model.modules())
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert {i.name for i in loaded.graph.initializer} == set(model.state_dict())
    assert [n.op_type for n in loaded.graph.node] == ["Gemm", "Relu", "Gemm", "Tanh", "Gemm",
                                                      "LogSoftmax"]
    assert _dims(loaded.graph.input[0]) == ["batch", 12]
    assert _dims(loaded.graph.output[0]) == ["batch", 5]
    model.eval()
    sess = _session(proto)
    for n in (4, 1, 9):
        x = cg.randn(n, 12)
        (got,) = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding="same", dilation=2, bias=False), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = self.features(x)
        return self.head(self.pool(x).view(x.size(0), -1))


def test_cnn_conv_batchnorm_pool_linear():
    cg.manual_seed(1)
    model = SmallCNN()
    for _ in range(3):  # running statistics away from (0, 1)
        model(cg.randn(6, 1, 8, 8) * 2 + 0.5)
    model.eval()
    proto = _check(model, (cg.randn(2, 1, 8, 8),), ["image"], (cg.randn(5, 1, 8, 8),),
                   dynamic_axes={"image": {0: "N"}})
    assert {"Conv", "BatchNormalization", "MaxPool", "GlobalAveragePool", "Gemm"} <= _ops(proto)
    assert "Im2col" not in str(_ops(proto))
    conv = [n for n in proto.graph.node if n.op_type == "Conv"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv[1].attribute}
    assert attrs["group"] == 2 and attrs["strides"] == [2, 2] and attrs["pads"] == [1, 1, 1, 1]
    names = {i.name for i in proto.graph.initializer}
    assert {"features.1.running_mean", "features.1.running_var", "head.weight"} <= names


def test_pools_and_conv_transpose_static():
    cg.manual_seed(2)
    model = nn.Sequential(nn.AvgPool2d(2), nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                              output_padding=1),
                          nn.LeakyReLU(0.2), nn.MaxPool2d(3, stride=2, padding=1),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Sigmoid()).eval()
    proto = _check(model, (cg.randn(2, 3, 8, 8),), ["x"])
    assert {"AveragePool", "ConvTranspose", "LeakyRelu", "MaxPool"} <= _ops(proto)


class Encoder(nn.Module):
    """A learned position table sliced to the input's length, then one encoder layer."""

    def __init__(self, d, heads, activation):
        super().__init__()
        self.pos = nn.Parameter(cg.randn(1, 16, d) * 0.1)
        self.layer = nn.TransformerEncoderLayer(d, heads, 2 * d, dropout=0.1,
                                                activation=activation, batch_first=True)

    def forward(self, x):
        return self.layer(x + self.pos[:, :x.shape[1]])


@pytest.mark.parametrize("d,heads,activation", [(32, 2, "relu"), (12, 3, "gelu")])
def test_transformer_encoder_layer_dynamic_batch_and_length(d, heads, activation):
    """Head dim 16 runs the fused attention row, head dim 4 its composition; both export
    as MatMul, Softmax, MatMul."""
    cg.manual_seed(3)
    model = Encoder(d, heads, activation).eval()
    proto = _check(model, (cg.randn(2, 5, d),), ["src"], (cg.randn(3, 7, d),),
                   (cg.randn(1, 2, d),), dynamic_axes={"src": {0: "batch", 1: "length"}},
                   output_names=["out"])
    assert {"LayerNormalization", "Softmax", "MatMul"} <= _ops(proto)
    assert _dims(proto.graph.output[0]) == ["batch", "length", d]
    for node in proto.graph.node:  # no Reshape to a constant that holds the batch size
        if node.op_type == "Reshape":
            shape = [i for i in proto.graph.initializer if i.name == node.input[1]]
            assert not shape or 2 not in onnx.numpy_helper.to_array(shape[0]).tolist()[:1]


@pytest.mark.parametrize("head_dim", [16, 4])
def test_attention_masks_and_causal(head_dim):
    """The fused row (head dim 16) and the composition of ops (head dim 4), causal, with
    a float mask and with a boolean one."""
    cg.manual_seed(4)

    def attend(q, k, v, m, keep):
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        masked = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        kept = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return causal, masked, kept

    q, k, v = (cg.randn(2, 2, 5, head_dim) for _ in range(3))
    m = cg.randn(5, 5)
    keep = cg.rand(5, 5) > 0.3
    keep[:, 0] = True  # every query keeps a key
    _check(attend, (q, k, v, m, keep), ["q", "k", "v", "m", "keep"])


class Tagger(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = cell(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, ids):
        out, state = self.rnn(self.emb(ids))
        h = state[0] if isinstance(state, tuple) else state
        return self.fc(out[:, -1]), h


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_embedding_and_recurrent_layer_unrolled(cell):
    cg.manual_seed(5)
    model = Tagger(cell).eval()
    proto = _check(model, (cg.randint(0, 20, (3, 6)),), ["ids"],
                   (cg.randint(0, 20, (5, 6)),), dynamic_axes={"ids": {0: "batch"}})
    assert {"Gather", "Sigmoid", "Tanh", "MatMul"} <= _ops(proto)
    assert "emb.weight" in {i.name for i in proto.graph.initializer}


def test_dynamic_sequence_of_an_unrolled_loop_raises():
    model = Tagger(nn.LSTM).eval()
    with pytest.raises(cg.onnx.OnnxExporterError, match="unrolled"):
        cg.onnx.export(model, (cg.randint(0, 20, (3, 6)),), None, input_names=["ids"],
                       dynamic_axes={"ids": [0, 1]})


def test_opsets_14_and_20():
    cg.manual_seed(6)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3)).eval()
    x = (cg.randn(4, 6),)
    old = _check(model, x, ["x"], opset_version=14)
    assert "LayerNormalization" not in _ops(old) and "Erf" in _ops(old)
    new = _check(model, x, ["x"], opset_version=20)
    assert {"LayerNormalization", "Gelu"} <= _ops(new)
    with pytest.raises(ValueError, match="opset_version 9"):
        cg.onnx.export(model, x, None, opset_version=9)


def test_file_object_names_and_keywords():
    model = nn.Linear(3, 2)
    buf = io.BytesIO()
    x = cg.randn(2, 3)
    proto = cg.onnx.export(model, (x, {}), buf, export_params=False)
    assert onnx.load_from_string(buf.getvalue()) == proto
    assert [i.name for i in proto.graph.input] == ["input", "weight", "bias"]
    assert not proto.graph.initializer and proto.graph.output[0].name == "output"
    got = _session(proto).run(None, {"input": x.numpy(), "weight": model.weight.numpy(force=True),
                                     "bias": model.bias.numpy(force=True)})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5)


def test_outputs_that_are_inputs_parameters_or_repeated():
    lin = nn.Linear(3, 3)

    def fn(x):
        y = lin(x)
        return x, y, y, lin.weight

    proto = _check(fn, (cg.randn(2, 3),), ["x"], output_names=["same", "y", "again", "w"])
    assert [o.name for o in proto.graph.output] == ["same", "y", "again", "w"]


# --- op rows one by one -------------------------------------------------------------------


def _pos(*shape):
    return cg.rand(*shape) + 0.5


ROWS = [
    ("arith", lambda x, y: (x + y, x - 2 * y, x * y / (y + 3), x ** 2, (-x).abs()),
     lambda: (cg.randn(3, 4), cg.rand(4))),
    ("unary", lambda x: (x.sqrt(), x.exp(), x.log(), x.rsqrt(), x.log1p(), x.expm1(),
                         x.reciprocal(), x.sin(), x.cos(), x.erf(), x.sigmoid(), x.tanh()),
     lambda: (_pos(2, 5),)),
    ("rounding", lambda x: (x.floor(), x.ceil(), x.round(), x.sign(), x.clamp(-0.5, 0.5),
                            x % 0.7, x // 0.3, cg.maximum(x, x.flip(1)), cg.minimum(x, 0.1)),
     lambda: (cg.randn(3, 6),)),
    ("integers", lambda i, j: (i + j, i * 3, i // j, i % j, (i > j).long(), i.float() / 2),
     lambda: (cg.randint(-9, 9, (4,)), cg.tensor([2, -3, 4, -5]))),
    ("logic", lambda x: (cg.where(x > 0, x, x * 0.1), (x > 0) & (x < 1), ~(x > 0),
                         (x == x.amax(1, keepdim=True)), x.masked_fill(x < 0, 2.0),
                         x.isnan(), x != 0.5),
     lambda: (cg.randn(3, 4),)),
    ("reductions", lambda x: (x.sum(1), x.mean((0, 2), keepdim=True), x.amax(-1), x.amin(0),
                              x.var(1), x.std(2, keepdim=True), x.var(1, unbiased=False),
                              x.logsumexp(2), x.norm(dim=1), x.norm(p=1), x.prod(2),
                              x.sum(), x.max(1)[0], x.max(1)[1], x.argmax(2), x.argmin(),
                              (x > 0).any(1), (x > -5).all()),
     lambda: (cg.randn(2, 3, 4),)),
    ("rows", lambda x: (x.softmax(-1), x.log_softmax(0), x.cumsum(1), x.tril(), x.triu(1)),
     lambda: (cg.randn(3, 4),)),
    ("shapes", lambda x: (x.permute(2, 0, 1), x.transpose(0, 1).contiguous(), x.unsqueeze(1),
                          x[:, :1].squeeze(1), x.reshape(6, 4), x.flatten(1),
                          x[0].expand(5, 3, 4), x[:, 1:3, ::2], x[..., -1], x[None, 1],
                          cg.cat([x, x * 2], 1), cg.stack([x, x], -1), x.chunk(2, -1)[1],
                          x.flip(0, 2), x.to(cg.int32)),
     lambda: (cg.randn(2, 3, 4),)),
    ("sorting", lambda x: (x.sort(1)[0], x.sort(0, descending=True)[1], x.topk(2, 1)[0],
                           x.argsort(1)),
     lambda: (cg.randn(3, 5),)),
    ("indexing", lambda x, i: (x.index_select(1, i), x[i], x.gather(1, i.view(1, 3).expand(
        2, 3)), x[:, i]),
     lambda: (cg.randn(2, 4), cg.tensor([1, 0, 1]))),
    ("activations", lambda x: (F.relu(x), F.gelu(x), F.gelu(x, approximate="tanh"),
                               F.silu(x), F.leaky_relu(x), F.softplus(x), F.hardswish(x),
                               F.hardsigmoid(x), F.logsigmoid(x), F.elu(x)
                               if hasattr(F, "elu") else x),
     lambda: (cg.randn(3, 5) * 3,)),
    ("conv1d", lambda x, w: (F.conv1d(x, w, padding=1, stride=2), F.conv1d(x[0], w,
                                                                            padding="same")),
     lambda: (cg.randn(2, 4, 9), cg.randn(6, 4, 3))),
    ("norms", lambda x, w: (F.layer_norm(x, (4,), w, None), F.group_norm(x.view(2, 4, 3), 2),
                            F.normalize(x, dim=-1), F.batch_norm(x.view(6, 4), None, None,
                                                                 training=True)),
     lambda: (cg.randn(2, 3, 4), cg.rand(4))),
]


@pytest.mark.parametrize("opset", [14, 17, 18])
@pytest.mark.parametrize("name,fn,make", ROWS, ids=[r[0] for r in ROWS])
def test_op_rows_against_onnxruntime(name, fn, make, opset):
    """Every row of each case, at opsets with reduction axes as attributes (14), as
    inputs (18) and the default."""
    cg.manual_seed(7)
    args = make()
    _check(fn, args, [f"in{i}" for i in range(len(args))], rtol=1e-4, atol=1e-5,
           opset_version=opset)


@pytest.mark.parametrize("opset", [14, 17])
def test_functions_with_dynamic_shapes(opset):
    """Shapes read from the input: a Reshape with -1, zeros of the batch's size, an
    expand and a slice to a dynamic bound."""

    def fn(x):
        B, L, E = x.shape
        h = cg.zeros(B, 2 * E)
        y = x.reshape(B * L, E).view(B, L, 2, E // 2).transpose(1, 2).reshape(B, 2, -1)
        return y[:, :, : L * 2] + h.unsqueeze(1)[..., :1], x.mean(1, keepdim=True).expand(
            B, L, E)

    x = cg.randn(2, 3, 4)
    proto = _check(fn, (x,), ["x"], (cg.randn(5, 6, 4),),
                   dynamic_axes={"x": {0: "B", 1: "L"}}, opset_version=opset)
    assert "ConstantOfShape" in _ops(proto)


# --- errors ------------------------------------------------------------------------------


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 3))

    def forward(self, x):
        return cg.atan2(self.inner(x), x)


def test_unmapped_op_names_the_op_and_where():
    with pytest.raises(cg.onnx.UnsupportedOperatorError) as info:
        cg.onnx.export(Odd(), (cg.randn(2, 3),), None)
    msg = str(info.value)
    assert "'atan2'" in msg and "Odd" in msg and "test_onnx.py" in msg


def test_python_numbers_from_dynamic_sizes_raise():
    def fn(x):
        return x / x.shape[0]

    with pytest.raises(cg.onnx.OnnxExporterError, match="dynamic"):
        cg.onnx.export(fn, (cg.randn(3, 2),), None, input_names=["x"],
                       dynamic_axes={"x": [0]})


def test_constant_that_follows_a_dynamic_axis_raises():
    def fn(x):
        return x + cg.arange(x.shape[0]).float().unsqueeze(1)

    with pytest.raises(cg.onnx.OnnxExporterError, match="outside the ops"):
        cg.onnx.export(fn, (cg.randn(3, 2),), None, input_names=["x"],
                       dynamic_axes={"x": [0]})


def test_bad_names_raise():
    model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="not an input or output"):
        cg.onnx.export(model, (cg.randn(2, 3),), None, dynamic_axes={"y": [0]})
    with pytest.raises(ValueError, match="2 names given for 1"):
        cg.onnx.export(model, (cg.randn(2, 3),), None, input_names=["a", "b"])


def test_import_clgraph_does_not_import_onnx():
    code = "import sys, clgraph; assert 'onnx' not in sys.modules; print(clgraph.onnx.export)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_random_numbers_in_the_forward_raise():
    def noisy(x):
        return x + cg.randn_like(x)

    with pytest.raises(cg.onnx.OnnxExporterError, match="draws random numbers"):
        cg.onnx.export(noisy, (cg.randn(2, 3),), None)
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    with pytest.raises(cg.onnx.OnnxExporterError, match=r"random numbers \(in 1 \(Dropout\)"):
        cg.onnx.export(model, (cg.randn(2, 3),), None,
                       training=cg.onnx.TrainingMode.TRAINING)
    assert model.training


def test_in_place_writes():
    """An in-place op on a whole tensor is a new value; writing into a slice, or reading
    a view of a tensor written afterwards, raises."""

    def whole(x):
        y = x * 2
        y.relu_()
        y += 1
        return y

    proto = _check(whole, (cg.randn(2, 3),), ["x"])
    assert [n.op_type for n in proto.graph.node] == ["Mul", "Relu", "Add"]

    def part(x):
        y = x * 1
        y[:, 0] = 0.0
        return y

    with pytest.raises(cg.onnx.OnnxExporterError, match="part of a tensor"):
        cg.onnx.export(part, (cg.randn(2, 3),), None)

    def stale_view(x):
        y = x * 1
        v = y.view(3, 2)
        y.relu_()
        return v + 1

    with pytest.raises(cg.onnx.OnnxExporterError, match="after an in-place op"):
        cg.onnx.export(stale_view, (cg.randn(2, 3),), None)
