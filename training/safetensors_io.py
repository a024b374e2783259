"""Minimal reader and writer for the safetensors format (no third-party package).

Layout: 8-byte little-endian header length N, N bytes of JSON header, then the
raw little-endian, C-ordered tensor data.  The header maps each tensor name to
{"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
section) and may hold "__metadata__" (str -> str).

The writer pads the header with spaces so the data section starts on an 8-byte
boundary and stores tensors in order of decreasing element size, so every
tensor is aligned to its element size: the C++ reader can then view the data
in place without copying.
"""

import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dt: name for name, dt in _DTYPES.items()}


def read(path):
    """Return (tensors, metadata): a dict name -> numpy array and the __metadata__ dict."""
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} byte range does not match its shape")
        array = np.frombuffer(data[begin:end], dtype=dtype, count=count).reshape(shape)
        tensors[name] = array.copy()  # own the memory; the file buffer is released
    return tensors, metadata


def write(path, tensors, metadata=None):
    """Write a dict name -> numpy array (or torch tensor) as a safetensors file."""
    arrays = {}
    for name, value in tensors.items():
        if hasattr(value, "detach"):  # torch.Tensor
            value = value.detach().cpu().numpy()
        array = np.ascontiguousarray(value)
        little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        array = array.astype(little, copy=False)
        if array.dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: dtype {array.dtype} cannot be stored")
        arrays[name] = array

    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header = {}
    offset = 0
    for name in order:
        array = arrays[name]
        header[name] = {
            "dtype": _NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    header["__metadata__"] = dict(metadata or {"format": "pt"})

    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * ((-(8 + len(header_bytes))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for name in order:
            f.write(arrays[name].tobytes(order="C"))
