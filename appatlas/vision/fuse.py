"""The OCR models with their element-wise chains folded: the same function, less CPU.

PaddleOCR's export of PP-LCNetV3 writes, after every convolution, a learnable affine (`*a + b`),
a hard-swish as four element-wise passes (`Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)`) and another
affine: eight passes over each activation, none of which onnxruntime fuses. In a profile of the
recogniser, those passes and the layout changes they force took about half its time. Three exact
rewrites remove most of them:

- hard-swish: `x * HardSigmoid(x; 1/6, 0.5)`, two passes instead of four;
- an affine right after a convolution goes into the convolution's weights and bias;
- an affine right before a convolution: its scale goes into the weights (zero padding stays zero);
  its shift goes into the bias of a 1x1 convolution without padding, and stays an Add otherwise.

The rewrite works on the model's bytes with a minimal protobuf schema of the few ONNX fields it
touches (nodes: inputs, outputs, type, attributes; constants' values). Everything else in the
file passes through as unknown fields, so the `onnx` package is not needed: protobuf comes with
onnxruntime. A pattern is rewritten only when its constants are what the pattern says (scalars
for the affines; 3, 0, 6, 6 for the hard-swish) and no value it removes has another consumer;
anything else is left as it was. `tests/vision/test_fuse.py` checks both models give the same
outputs as the files in the wheel.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["fuse"]

_FLOAT = 1  # onnx.TensorProto.FLOAT and onnx.AttributeProto.FLOAT


@cache
def _classes() -> dict[str, Any]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="appatlas_onnx_min.proto", package="appatlas_onnx_min",
                                            syntax="proto2")
    f = descriptor_pb2.FieldDescriptorProto
    opt, rep = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    schema = {  # field numbers and types as in onnx.proto
        "Tensor": [(1, "dims", f.TYPE_INT64, rep, None), (2, "data_type", f.TYPE_INT32, opt, None),
                   (4, "float_data", f.TYPE_FLOAT, rep, None), (9, "raw_data", f.TYPE_BYTES, opt, None)],
        "Attribute": [(1, "name", f.TYPE_STRING, opt, None), (2, "f", f.TYPE_FLOAT, opt, None),
                      (3, "i", f.TYPE_INT64, opt, None), (4, "s", f.TYPE_BYTES, opt, None),
                      (5, "t", f.TYPE_MESSAGE, opt, "Tensor"), (8, "ints", f.TYPE_INT64, rep, None),
                      (20, "type", f.TYPE_INT32, opt, None)],
        "Node": [(1, "input", f.TYPE_STRING, rep, None), (2, "output", f.TYPE_STRING, rep, None),
                 (3, "name", f.TYPE_STRING, opt, None), (4, "op_type", f.TYPE_STRING, opt, None),
                 (5, "attribute", f.TYPE_MESSAGE, rep, "Attribute"), (7, "domain", f.TYPE_STRING, opt, None)],
        "Graph": [(1, "node", f.TYPE_MESSAGE, rep, "Node")],
        "Model": [(7, "graph", f.TYPE_MESSAGE, opt, "Graph")],
    }
    for name, fields in schema.items():
        m = fd.message_type.add(name=name)
        for number, fname, ftype, label, ref in fields:
            field = m.field.add(name=fname, number=number, type=ftype, label=label)
            if ref:
                field.type_name = f".appatlas_onnx_min.{ref}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"appatlas_onnx_min.{n}"))
            for n in schema}


class _Graph:
    """The node list with who makes and who reads each value, and the constants' values."""

    def __init__(self, nodes: Any) -> None:
        import numpy as np

        self.np = np
        self.nodes = nodes
        self.producer = {o: k for k, n in enumerate(nodes) for o in n.output}
        self.uses: dict[str, int] = {}
        for n in nodes:
            for i in n.input:
                self.uses[i] = self.uses.get(i, 0) + 1
        self.drop: set[int] = set()

    def const(self, name: str) -> Any:
        """The float32 array a Constant node makes, or None."""
        k = self.producer.get(name)
        if k is None:
            return None
        n = self.nodes[k]
        if n.op_type != "Constant" or len(n.attribute) != 1 or n.attribute[0].name != "value":
            return None
        t = n.attribute[0].t
        if t.data_type != _FLOAT:
            return None
        np = self.np
        data = np.frombuffer(t.raw_data, "<f4") if t.raw_data else np.asarray(t.float_data, np.float32)
        shape = tuple(t.dims)
        return data.reshape(shape) if int(np.prod(shape)) == data.size else None

    def scalar(self, name: str) -> float | None:
        v = self.const(name)
        return float(v.ravel()[0]) if v is not None and v.size == 1 else None

    def set_const(self, name: str, value: Any) -> None:
        t = self.nodes[self.producer[name]].attribute[0].t
        del t.float_data[:]
        t.raw_data = self.np.ascontiguousarray(value, "<f4").tobytes()

    def only(self, name: str, op: str) -> int | None:
        """The node of type `op` that makes `name`, when nothing else reads `name`."""
        k = self.producer.get(name)
        if k is None or k in self.drop or self.nodes[k].op_type != op or self.uses.get(name) != 1:
            return None
        return k

    def reader(self, name: str) -> int | None:
        """The one node that reads `name`."""
        if self.uses.get(name) != 1:
            return None
        return next((k for k, n in enumerate(self.nodes) if k not in self.drop and name in n.input), None)

    def affine(self, k: int) -> tuple[str, float] | None:
        """(input, scalar) of a Mul or Add node by a one-element constant; the constant read only here."""
        n = self.nodes[k]
        if n.op_type not in ("Mul", "Add") or len(n.input) != 2:
            return None
        for x, c in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
            v = self.scalar(c)
            if v is not None and self.uses.get(c) == 1 and self.scalar(x) is None:
                return x, v
        return None

    def finish(self) -> int:
        for k in sorted(self.drop, reverse=True):
            del self.nodes[k]
        return len(self.drop)


def fuse(model: bytes) -> tuple[bytes, dict[str, int]]:
    """(the model rewritten, how many of each rewrite were made)."""
    m = _classes()["Model"].FromString(model)
    counts = {"hard_swish": _hard_swish(_Graph(m.graph.node)), "affine_after_conv": _after_conv(_Graph(m.graph.node)),
              "affine_before_conv": _before_conv(_Graph(m.graph.node))}
    return m.SerializeToString(), counts


def _hard_swish(g: _Graph) -> int:
    nodes = g.nodes
    fused = 0
    for d, div in enumerate(nodes):
        if div.op_type != "Div" or len(div.input) != 2 or g.scalar(div.input[1]) != 6.0:
            continue
        mk = g.only(div.input[0], "Mul")
        if mk is None or len(nodes[mk].input) != 2:
            continue
        mul = nodes[mk]
        for x, c in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            ck = g.only(c, "Clip")
            if ck is None or len(nodes[ck].input) != 3 or g.scalar(nodes[ck].input[1]) != 0.0 \
                    or g.scalar(nodes[ck].input[2]) != 6.0:
                continue
            ak = g.only(nodes[ck].input[0], "Add")
            if ak is None or len(nodes[ak].input) != 2:
                continue
            add = nodes[ak]
            if x not in add.input or g.scalar(add.input[1 - list(add.input).index(x)]) != 3.0:
                continue
            # Add becomes HardSigmoid(x); the Mul by x writes what Div wrote; Clip and Div go
            del add.input[:]
            add.input.append(x)
            add.op_type = "HardSigmoid"
            for name, value in (("alpha", 1 / 6), ("beta", 0.5)):
                add.attribute.add(name=name, f=value, type=_FLOAT)
            out = div.output[0]
            del mul.input[:]
            mul.input.extend([x, add.output[0]])
            del mul.output[:]
            mul.output.append(out)
            g.drop.update((ck, d))
            fused += 1
            break
    g.finish()
    return fused


def _conv_params(g: _Graph, conv: Any) -> tuple[Any, Any] | None:
    """(weights, bias) of a Conv whose weights and bias are constants read only by it."""
    if conv.op_type != "Conv" or len(conv.input) != 3:
        return None
    w, b = g.const(conv.input[1]), g.const(conv.input[2])
    if w is None or b is None or w.ndim != 4 or b.shape != (w.shape[0],):
        return None
    if g.uses.get(conv.input[1]) != 1 or g.uses.get(conv.input[2]) != 1:
        return None
    return w, b


def _after_conv(g: _Graph) -> int:
    """Conv(W, B) -> *a -> +b  becomes  Conv(a W, a B + b)."""
    nodes = g.nodes
    fused = 0
    for conv in nodes:
        params = _conv_params(g, conv)
        if params is None:
            continue
        mk = g.reader(conv.output[0])
        if mk is None or nodes[mk].op_type != "Mul" or (ma := g.affine(mk)) is None or ma[0] != conv.output[0]:
            continue
        ak = g.reader(nodes[mk].output[0])
        if ak is None or nodes[ak].op_type != "Add" or (aa := g.affine(ak)) is None:
            continue
        (w, b), a, shift = params, ma[1], aa[1]
        g.set_const(conv.input[1], w * a)
        g.set_const(conv.input[2], b * a + shift)
        out = nodes[ak].output[0]
        del conv.output[:]
        conv.output.append(out)
        g.drop.update((mk, ak))
        fused += 1
    g.finish()
    return fused


def _before_conv(g: _Graph) -> int:
    """*a -> +b -> Conv(W, B)  becomes  Conv(a W, B + b sum W) for a 1x1 convolution without padding,
    else  +b/a -> Conv(a W, B)  (zero padding: a scaled input pads with the same zeros)."""
    nodes = g.nodes
    fused = 0
    for mk, mul in enumerate(nodes):
        if mul.op_type != "Mul" or mk in g.drop or (ma := g.affine(mk)) is None or ma[1] == 0.0:
            continue
        ak = g.reader(mul.output[0])
        if ak is None or nodes[ak].op_type != "Add" or (aa := g.affine(ak)) is None:
            continue
        ck = g.reader(nodes[ak].output[0])
        if ck is None or (params := _conv_params(g, nodes[ck])) is None:
            continue
        conv, (w, b), a, shift = nodes[ck], params, ma[1], aa[1]
        attrs = {at.name: at for at in conv.attribute}
        if "auto_pad" in attrs and attrs["auto_pad"].s not in (b"", b"NOTSET"):
            continue
        g.set_const(conv.input[1], w * a)
        pointwise = w.shape[2:] == (1, 1) and not any(attrs["pads"].ints if "pads" in attrs else ())
        if pointwise:
            g.set_const(conv.input[2], b + shift * w.sum(axis=(1, 2, 3)))
            conv.input[0] = ma[0]
            g.drop.update((mk, ak))
        else:
            add = nodes[ak]
            c = next(i for i in add.input if g.scalar(i) is not None)
            g.set_const(c, g.const(c) / a)
            add.input[list(add.input).index(mul.output[0])] = ma[0]
            g.drop.add(mk)
        fused += 1
    g.finish()
    return fused
