#!/usr/bin/env python3
"""Converts a llama2.c checkpoint (+ its llama2.c tokenizer) into an F32 GGUF file for llama.cpp's benchmarks.

Usage: llama2c_to_gguf.py MODEL.bin TOKENIZER.bin OUT.gguf

Only for the anchor comparison in benchmarks/cpu/compare.sh (llama-bench / llama-batched-bench on the same
weights run.c and SpotServe-J use); written from the GGUF format description (version 3, 32-byte alignment),
numpy for the tensor bytes. llama2.c rotates adjacent (even, odd) pairs, which is what llama.cpp's "llama"
architecture expects of GGUF q/k weights, so the matrices are copied unchanged (no permutation).
"""
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("llama2c_to_gguf.py needs numpy (apt-get install python3-numpy)")

ALIGN = 32
T_UINT32, T_INT32, T_FLOAT32, T_STRING, T_ARRAY = 4, 5, 6, 8, 9


def gguf_str(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value):
    out = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == T_UINT32:
        out += struct.pack("<I", value)
    elif vtype == T_INT32:
        out += struct.pack("<i", value)
    elif vtype == T_FLOAT32:
        out += struct.pack("<f", value)
    elif vtype == T_STRING:
        out += gguf_str(value)
    else:
        raise ValueError(vtype)
    return out


def kv_array(key, etype, values):
    out = gguf_str(key) + struct.pack("<IIQ", T_ARRAY, etype, len(values))
    for v in values:
        if etype == T_STRING:
            out += gguf_str(v)
        elif etype == T_FLOAT32:
            out += struct.pack("<f", v)
        elif etype == T_INT32:
            out += struct.pack("<i", v)
        else:
            raise ValueError(etype)
    return out


def read_tokenizer(path, vocab):
    tokens, scores = [], []
    with open(path, "rb") as f:
        struct.unpack("<i", f.read(4))  # max_token_length
        for _ in range(vocab):
            score, n = struct.unpack("<fi", f.read(8))
            tokens.append(f.read(n))
            scores.append(score)
    return tokens, scores


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, tok, out = sys.argv[1:]
    raw = np.memmap(model, dtype=np.float32, mode="r")
    header = np.frombuffer(open(model, "rb").read(28), dtype="<i4")
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = (int(v) for v in header)
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // heads
    kv_dim = kv_heads * hs
    o = 7  # floats
    def take(*shape):
        nonlocal o
        n = int(np.prod(shape))
        a = raw[o:o + n].reshape(shape)
        o += n
        return a
    emb = take(vocab, dim)
    rms_att = take(layers, dim)
    wq = take(layers, dim, dim)
    wk = take(layers, kv_dim, dim)
    wv = take(layers, kv_dim, dim)
    wo = take(layers, dim, dim)
    rms_ffn = take(layers, dim)
    w1 = take(layers, hidden, dim)
    w2 = take(layers, dim, hidden)
    w3 = take(layers, hidden, dim)
    rms_final = take(dim)
    take(seq_len, hs // 2)
    take(seq_len, hs // 2)
    wcls = emb if shared else take(vocab, dim)

    tensors = [("token_embd.weight", emb), ("output_norm.weight", rms_final)]
    if not shared:
        tensors.append(("output.weight", wcls))
    for l in range(layers):
        p = "blk.%d." % l
        tensors += [(p + "attn_norm.weight", rms_att[l]), (p + "attn_q.weight", wq[l]), (p + "attn_k.weight", wk[l]),
                    (p + "attn_v.weight", wv[l]), (p + "attn_output.weight", wo[l]), (p + "ffn_norm.weight", rms_ffn[l]),
                    (p + "ffn_gate.weight", w1[l]), (p + "ffn_down.weight", w2[l]), (p + "ffn_up.weight", w3[l])]

    tokens, scores = read_tokenizer(tok, vocab)
    types = []
    for i, t in enumerate(tokens):
        if i == 0:
            types.append(2)  # unknown
        elif i in (1, 2):
            types.append(3)  # control
        elif len(t) == 6 and t.startswith(b"<0x") and t.endswith(b">"):
            types.append(6)  # byte
        else:
            types.append(1)
    meta = [
        kv("general.architecture", T_STRING, "llama"),
        kv("general.name", T_STRING, "llama2c-" + model.rsplit("/", 1)[-1]),
        kv("general.file_type", T_UINT32, 0),
        kv("llama.context_length", T_UINT32, seq_len),
        kv("llama.embedding_length", T_UINT32, dim),
        kv("llama.block_count", T_UINT32, layers),
        kv("llama.feed_forward_length", T_UINT32, hidden),
        kv("llama.rope.dimension_count", T_UINT32, hs),
        kv("llama.attention.head_count", T_UINT32, heads),
        kv("llama.attention.head_count_kv", T_UINT32, kv_heads),
        kv("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5),
        kv("tokenizer.ggml.model", T_STRING, "llama"),
        kv_array("tokenizer.ggml.tokens", T_STRING, tokens),
        kv_array("tokenizer.ggml.scores", T_FLOAT32, scores),
        kv_array("tokenizer.ggml.token_type", T_INT32, types),
        kv("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        kv("tokenizer.ggml.eos_token_id", T_UINT32, 2),
        kv("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
    ]
    infos = b""
    offset = 0
    offsets = []
    for name, a in tensors:
        shape = a.shape[::-1]  # ggml: ne0 is the innermost (column) dimension
        infos += gguf_str(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        infos += struct.pack("<IQ", 0, offset)  # type F32
        offsets.append(offset)
        offset += a.nbytes
        offset += (-offset) % ALIGN
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
    with open(out, "wb") as f:
        f.write(head)
        f.write(b"\0" * ((-len(head)) % ALIGN))
        start = f.tell()
        for (name, a), off in zip(tensors, offsets):
            f.write(b"\0" * (start + off - f.tell()))
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    print("wrote %s: %d tensors, dim %d, %d layers, vocab %d" % (out, len(tensors), dim, layers, vocab))


if __name__ == "__main__":
    main()
