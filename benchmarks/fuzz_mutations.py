"""Mutations for benchmarks/fuzz_readers.py: each takes hypothesis's ``data`` and the valid
file's bytes and returns the mutated bytes plus a short description (for the findings log).

Byte-level mutations work on any format; the structured ones rebuild the file with the
format's own library (nibabel, pydicom, Pillow, tifffile, numpy) from drawn dtypes, shapes,
header fields and NaN/Inf values, so the mutants get past the magic-number checks.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

SIZE = 16
EXTREMES = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e38, -3e38, 1e308, 65535.0, -32768.0]


# --------------------------------------------------------------------------- bytes


def byte_mutation(data, raw: bytes, header: int = 512) -> tuple[bytes, str]:
    """Flip bits, overwrite, truncate, insert, delete or zero a run, anywhere or in the header."""
    buf = bytearray(raw)
    kind = data.draw(st.sampled_from(["flip", "header_flip", "overwrite", "truncate",
                                      "insert", "delete", "extreme", "duplicate"]))  # fmt: skip
    n = max(len(buf), 1)
    if kind in ("flip", "header_flip"):
        top = min(header, n) if kind == "header_flip" else n
        spots = data.draw(st.lists(st.integers(0, top - 1), min_size=1, max_size=8))
        for i in spots:
            if i < len(buf):
                buf[i] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(buf), f"{kind} {spots[:4]}"
    at = data.draw(st.integers(0, n - 1))
    if kind == "overwrite":
        chunk = data.draw(st.binary(min_size=1, max_size=64))
        buf[at : at + len(chunk)] = chunk
    elif kind == "truncate":
        buf = buf[:at]
    elif kind == "insert":
        buf[at:at] = data.draw(st.binary(min_size=1, max_size=64))
    elif kind == "delete":
        del buf[at : at + data.draw(st.integers(1, 256))]
    elif kind == "extreme":
        for i in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
            if i < len(buf):
                buf[i] = data.draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
    else:
        span = data.draw(st.integers(1, 128))
        buf[at:at] = buf[at : at + span]
    return bytes(buf), f"{kind} at {at}"


def array(data, *, dims=(2, 3, 4), dtypes=None) -> np.ndarray:
    """A small array of a drawn dtype and shape, with NaN/Inf/extreme values injected."""
    dtypes = dtypes or ["uint8", "int8", "int16", "uint16", "int32", "float32", "float64"]
    dtype = np.dtype(data.draw(st.sampled_from(dtypes)))
    ndim = data.draw(st.sampled_from(list(dims)))
    shape = tuple(data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 4, 16]), min_size=ndim,
                                     max_size=ndim)))  # fmt: skip
    fill = data.draw(st.sampled_from(["random", "constant", "extremes"]))
    gen = np.random.default_rng(data.draw(st.integers(0, 1000)))
    values = gen.normal(100, 50, shape)
    if fill == "constant":
        values = np.full(shape, data.draw(st.sampled_from([0.0, 7.0, 255.0])))
    if fill == "extremes" and values.size:
        flat = values.reshape(-1)
        for _ in range(data.draw(st.integers(1, 4))):
            flat[gen.integers(0, flat.size)] = data.draw(st.sampled_from(EXTREMES))
    if dtype.kind == "b":
        return np.nan_to_num(values) > 100
    if dtype.kind in "iu":
        with np.errstate(invalid="ignore"):
            info = np.iinfo(dtype)
            values = np.nan_to_num(values, posinf=info.max, neginf=info.min)
            values = np.clip(values, info.min, info.max)
    return values.astype(dtype)


# --------------------------------------------------------------------------- NIfTI


def _f32(value: float) -> float:
    """The float32 a value becomes (1e308 -> inf), so struct can pack it."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


def nifti(data, raw: bytes, gz: bool) -> tuple[bytes, str]:
    import nibabel as nib

    plain = gzip.decompress(raw) if gz else raw
    kind = data.draw(st.sampled_from(["array", "header", "scaling", "bytes"] +
                                     (["crc", "isize", "gzip_bytes", "trailing"] if gz else [])))  # fmt: skip
    if kind == "array":
        arr = array(data, dims=(1, 2, 3, 4, 5), dtypes=["uint8", "int16", "int32", "float32",
                                                        "float64", "int64", "complex64"])  # fmt: skip
        assume(arr.size > 0 or data.draw(st.booleans()))
        try:
            plain = nib.Nifti1Image(arr, np.eye(4)).to_bytes()
        except Exception:
            assume(False)
        desc = f"array {arr.dtype} {arr.shape}"
    elif kind == "header":
        # raw header fields: dim (40, 8 x int16), datatype (70), bitpix (72), pixdim (76),
        # vox_offset (108 float32), sizeof_hdr (0)
        field = data.draw(st.sampled_from(["dim", "datatype", "bitpix", "pixdim", "vox_offset",
                                           "sizeof_hdr"]))  # fmt: skip
        buf = bytearray(plain)
        if field == "dim":
            i = data.draw(st.integers(0, 7))
            struct.pack_into("<h", buf, 40 + 2 * i, data.draw(st.integers(-32768, 32767)))
        elif field == "datatype":
            struct.pack_into("<h", buf, 70, data.draw(st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64,
                                                                       128, 255, 256, 2304, 999])))  # fmt: skip
        elif field == "bitpix":
            struct.pack_into("<h", buf, 72, data.draw(st.integers(-1, 256)))
        elif field == "pixdim":
            i = data.draw(st.integers(0, 7))
            struct.pack_into("<f", buf, 76 + 4 * i, _f32(data.draw(st.sampled_from(EXTREMES))))
        elif field == "vox_offset":
            struct.pack_into("<f", buf, 108, data.draw(st.sampled_from([0.0, 1.0, 351.0, 1e9,
                                                                        np.nan, -352.0])))  # fmt: skip
        else:
            struct.pack_into("<i", buf, 0, data.draw(st.sampled_from([0, 348, 540, -1])))
        plain, desc = bytes(buf), f"header {field}"
    elif kind == "scaling":
        buf = bytearray(plain)
        slope, inter = data.draw(st.sampled_from(EXTREMES)), data.draw(st.sampled_from(EXTREMES))
        struct.pack_into("<ff", buf, 112, _f32(slope), _f32(inter))
        plain, desc = bytes(buf), f"scl_slope {slope} scl_inter {inter}"
    elif kind == "bytes":
        plain, desc = byte_mutation(data, plain, header=352)
    else:
        buf = bytearray(raw)
        if kind == "crc":
            buf[-8 + data.draw(st.integers(0, 3))] ^= 0xFF
        elif kind == "isize":
            buf[-4 + data.draw(st.integers(0, 3))] ^= 0x5A
        elif kind == "gzip_bytes":
            return byte_mutation(data, raw, header=32)
        else:
            buf += data.draw(st.sampled_from([b"\0" * 16, b"garbage", gzip.compress(b"x")]))
        return bytes(buf), f"gzip {kind}"
    return (gzip.compress(plain) if gz else plain), desc


# --------------------------------------------------------------------------- DICOM

DICOM_FIELDS = {
    "Rows": [0, 1, 8, 17, 65535],
    "Columns": [0, 1, 8, 17, 65535],
    "BitsAllocated": [0, 1, 8, 12, 32, 64],
    "BitsStored": [0, 1, 8, 12, 17, 32],
    "HighBit": [0, 7, 16, 31],
    "PixelRepresentation": [0, 1, 2],
    "SamplesPerPixel": [0, 2, 3, 4],
    "PhotometricInterpretation": ["RGB", "PALETTE COLOR", "YBR_FULL", "MONOCHROME1", "XYZ"],
    "NumberOfFrames": [0, 1, 2, 3, -1, 1000],
    "RescaleSlope": [0, -1, 1e308, "nan", "inf", "-inf", "abc", ""],
    "RescaleIntercept": [1e308, "nan", "inf", "-1e309", "abc"],
    "PixelSpacing": [[0, 0], ["nan", 1], [1], [-1, -1], ["inf", "inf"]],
    "SliceThickness": [0, -2, "nan", "inf"],
    "ImagePositionPatient": [[0, 0], ["nan", 0, 0], [0, 0, "inf"], []],
    "ImageOrientationPatient": [[0, 0, 0, 0, 0, 0], [1, 0, 0], ["nan"] * 6, [1, 0, 0, 1, 0, 0]],
    "InstanceNumber": [-1, "", "abc"],
    "PixelData": [b"", b"\0\0", b"\1" * 4096, b"\0" * 511],
    "SeriesInstanceUID": ["9.9.9", ""],
}


def dicom_dataset(data, raw: bytes) -> tuple[bytes, str]:
    """Re-write one DICOM file with 1-3 fields changed (or deleted)."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(raw))
    changes = []
    for _ in range(data.draw(st.integers(1, 3))):
        field = data.draw(st.sampled_from(sorted(DICOM_FIELDS)))
        if data.draw(st.integers(0, 5)) == 0:
            if field in ds:
                delattr(ds, field)
            changes.append(f"del {field}")
            continue
        value = data.draw(st.sampled_from(DICOM_FIELDS[field]))
        try:
            setattr(ds, field, value)
        except Exception:
            assume(False)
        changes.append(f"{field}={value!r}"[:60])
    if data.draw(st.integers(0, 5)) == 0:
        from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

        uid = data.draw(st.sampled_from([ExplicitVRBigEndian, ImplicitVRLittleEndian,
                                         JPEGBaseline8Bit]))  # fmt: skip
        ds.file_meta.TransferSyntaxUID = uid
        changes.append(f"transfer syntax {uid.name}")
    out = io.BytesIO()
    try:
        ds.save_as(out, enforce_file_format=False)
    except Exception:
        assume(False)
    return out.getvalue(), "; ".join(changes)


def dicom(data, raw: bytes) -> tuple[bytes, str]:
    if data.draw(st.booleans()):
        return dicom_dataset(data, raw)
    return byte_mutation(data, raw, header=400)


# --------------------------------------------------------------------------- Pillow / TIFF


def pillow_image(data, fmt: str) -> tuple[bytes, str]:
    """A Pillow image of a drawn mode and size, saved as ``fmt``."""
    from PIL import Image

    modes = {"PNG": ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"],
             "GIF": ["P", "L", "1"], "JPEG": ["L", "RGB", "CMYK"],
             "TIFF": ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]}[fmt]  # fmt: skip
    mode = data.draw(st.sampled_from(modes))
    h, w = data.draw(st.sampled_from([SIZE, 1, 8, 17])), data.draw(st.sampled_from([SIZE, 1, 9]))
    gen = np.random.default_rng(data.draw(st.integers(0, 100)))
    constant = data.draw(st.booleans())
    base = Image.fromarray(
        np.full((h, w, 3), 9, np.uint8) if constant else gen.integers(0, 255, (h, w, 3), np.uint8)
    )
    img = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    kwargs = {}
    if mode == "P" and data.draw(st.booleans()):
        kwargs["transparency"] = 0
    if fmt == "JPEG":
        kwargs["progressive"] = data.draw(st.booleans())
    out = io.BytesIO()
    try:
        img.save(out, format=fmt, **kwargs)
    except Exception:
        assume(False)
    return out.getvalue(), f"pillow {mode} {h}x{w} constant={constant}"


def png_chunk(data, raw: bytes) -> tuple[bytes, str]:
    """Change an IHDR field (width, height, bit depth, colour type, interlace), CRC fixed up."""
    buf = bytearray(raw)
    field = data.draw(st.sampled_from(["width", "height", "depth", "colour", "interlace"]))
    at = {"width": 16, "height": 20, "depth": 24, "colour": 25, "interlace": 28}[field]
    if field in ("width", "height"):
        struct.pack_into(">I", buf, at, data.draw(st.sampled_from([0, 1, 15, 17, 2**31 - 1])))
    else:
        buf[at] = data.draw(st.sampled_from([0, 1, 2, 3, 4, 6, 8, 16, 7, 255]))
    struct.pack_into(">I", buf, 29, zlib.crc32(bytes(buf[12:29])))
    return bytes(buf), f"IHDR {field}"


def tiff_array(data) -> tuple[bytes, str]:
    import tifffile

    arr = array(data, dims=(2, 3, 4, 5), dtypes=["uint8", "uint16", "int8", "int32", "float16",
                                                  "float32", "float64", "bool", "complex64"])  # fmt: skip
    out = io.BytesIO()
    try:
        tifffile.imwrite(out, arr)
    except Exception:
        assume(False)
    return out.getvalue(), f"tifffile {arr.dtype} {arr.shape}"


def image_file(data, raw: bytes, fmt: str) -> tuple[bytes, str]:
    kinds = ["pillow", "bytes", "bytes"] + (["chunk"] if fmt == "PNG" else [])
    kinds += ["tifffile", "tifffile"] if fmt == "TIFF" else []
    kind = data.draw(st.sampled_from(kinds))
    if kind == "pillow":
        return pillow_image(data, fmt)
    if kind == "chunk":
        return png_chunk(data, raw)
    if kind == "tifffile":
        return tiff_array(data)
    return byte_mutation(data, raw, header=64)


# --------------------------------------------------------------------------- numpy


def npy(data, raw: bytes) -> tuple[bytes, str]:
    kind = data.draw(st.sampled_from(["array", "exotic", "header", "bytes"]))
    out = io.BytesIO()
    if kind == "array":
        arr = array(data, dims=(0, 1, 2, 3, 4, 5), dtypes=["uint8", "int16", "int64", "uint64",
                                                            "float16", "float32", "float64", "bool"])  # fmt: skip
        np.save(out, arr)
        return out.getvalue(), f"array {arr.dtype} {arr.shape}"
    if kind == "exotic":
        choice = data.draw(st.sampled_from(["complex", "object", "unicode", "structured",
                                            "datetime", "hwc2"]))  # fmt: skip
        arr = {
            "complex": lambda: np.ones((SIZE, SIZE), np.complex64) * (1 + 2j),
            "object": lambda: np.array([[1, None]], dtype=object),
            "unicode": lambda: np.full((SIZE, SIZE), "ab"),
            "structured": lambda: np.zeros((SIZE, SIZE), dtype=[("a", "f4"), ("b", "i2")]),
            "datetime": lambda: np.arange(SIZE * SIZE).astype("M8[s]").reshape(SIZE, SIZE),
            "hwc2": lambda: np.random.default_rng(0).random((SIZE, SIZE, 2)),
        }[choice]()
        np.save(out, arr, allow_pickle=True)
        return out.getvalue(), f"exotic {choice}"
    if kind == "header":
        text = raw[:128].decode("latin-1")
        edits = {"descr": ("'<f4'", data.draw(st.sampled_from(["'<f8'", "'|O'", "'<c8'", "'>i4'",
                                                                "'xx'", "'<U3'"]))),
                 "shape": ("(16, 16)", data.draw(st.sampled_from(["(16, 17)", "(0,)", "()",
                                                                  "(-1, 16)", "(99999, 99999)",
                                                                  "(16, 16, 16)"]))),
                 "order": ("False", data.draw(st.sampled_from(["True", "None", "1"])))}  # fmt: skip
        field = data.draw(st.sampled_from(sorted(edits)))
        old, new = edits[field]
        return text.replace(old, new, 1).encode("latin-1") + raw[128:], f"header {field} {new}"
    return byte_mutation(data, raw, header=128)


def npz(data, raw: bytes) -> tuple[bytes, str]:
    kind = data.draw(st.sampled_from(["images", "labels", "keys", "bytes"]))
    if kind == "bytes":
        return byte_mutation(data, raw, header=128)
    with np.load(io.BytesIO(raw)) as archive:
        arrays = dict(archive)
    if kind == "images":
        arrays["train_images"] = array(data, dims=(1, 2, 3, 4, 5))
        desc = f"images {arrays['train_images'].dtype} {arrays['train_images'].shape}"
    elif kind == "labels":
        values = data.draw(st.lists(st.sampled_from([0, 1, -1, 2, 31, 2**40, -(2**62), 1.5,
                                                      np.nan, np.inf]), min_size=0, max_size=6))  # fmt: skip
        shape = data.draw(st.sampled_from(["column", "flat", "wide"]))
        labels = np.array(values)
        labels = labels[:, None] if shape == "column" else labels
        labels = np.stack([labels, labels], 1) if shape == "wide" else labels
        arrays["train_labels"] = labels
        desc = f"labels {values} {shape}"
    else:
        key = data.draw(st.sampled_from(sorted(arrays)))
        arrays[key + data.draw(st.sampled_from(["", "_x"]))] = arrays.pop(key)
        desc = f"rename {key}"
        if data.draw(st.booleans()):
            arrays["train_labels"] = np.array([[None]] * 4, dtype=object)
            desc = "object labels"
    out = io.BytesIO()
    (np.savez_compressed if data.draw(st.booleans()) else np.savez)(out, **arrays)
    return out.getvalue(), desc


# --------------------------------------------------------------------------- text


CSV_CELLS = ["-1", "2", "31", "32", "1.5", "", " 1 ", "+1", "\u0663", "10000000000000000000000",
             "nan", "benign", "0x1", "images/ghost.png", "images", "../../etc/passwd",
             "labels/case00.png", "manifest.csv", '"', "\0", "a" * 5000, "images/case01.png"]  # fmt: skip


def csv_text(data, raw: bytes) -> tuple[bytes, str]:
    kind = data.draw(st.sampled_from(["cell", "row", "header", "encoding", "bytes"]))
    lines = raw.decode("utf-8").splitlines()
    if kind == "cell":
        row = data.draw(st.integers(1, len(lines) - 1))
        cells = lines[row].split(",")
        col = data.draw(st.integers(0, len(cells) - 1))
        cells[col] = data.draw(st.sampled_from(CSV_CELLS))
        lines[row] = ",".join(cells)
        desc = f"line {row + 1} cell {col} = {cells[col][:20]!r}"
    elif kind == "row":
        row = data.draw(st.integers(1, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop_cell", "add_cell", "delete", "duplicate"]))
        if action == "drop_cell":
            lines[row] = lines[row].rsplit(",", 1)[0]
        elif action == "add_cell":
            lines[row] += "," + data.draw(st.sampled_from(CSV_CELLS))
        elif action == "delete":
            del lines[row:]
        else:
            lines.append(lines[row])
        desc = f"{action} line {row + 1}"
    elif kind == "header":
        lines[0] = data.draw(st.sampled_from(["image,label,label", "image,label,class,patient_id",
                                              "file,label,class", "Image,LABEL,Class", "image",
                                              "image,mask,class", "image,label,class,"]))  # fmt: skip
        desc = f"header {lines[0]!r}"
    elif kind == "encoding":
        prefix = data.draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xe9", b"\0"]))
        return prefix + raw, f"prefix {prefix!r}"
    else:
        return byte_mutation(data, raw, header=64)
    return ("\n".join(lines) + "\n").encode("utf-8"), desc


YAML_KEYS = ["data.patches.size", "data.patches.per_image", "train.batch_size", "train.steps",
             "data.preprocess.normalize", "data.preprocess.channels", "data.preprocess.resize",
             "data.split.val_fraction", "data.split.test_fraction", "data.train.label_values",
             "data.train.image_glob", "data.train.id_regex", "data.train.kind", "data.train.root",
             "data.train.class_names", "data.patches", "data.train", "preset", "train.device",
             "sample.label_threshold", "data.preprocess.label_mode", "data.test", "model"]  # fmt: skip
YAML_VALUES = [None, 0, -1, 2**63, 1e308, float("nan"), float("inf"), "", "abc", [], {}, [1, 2, 3],
               True, [0, 0, 0], "[", "cuda:99", "(", "*", [[1, 2], [3]], -1e-9, 0.5]  # fmt: skip


def yaml_text(data, raw: bytes) -> tuple[bytes, str]:
    import yaml

    kind = data.draw(st.sampled_from(["value", "delete", "text", "bytes"]))
    if kind in ("value", "delete"):
        config = yaml.safe_load(raw)
        path = data.draw(st.sampled_from(YAML_KEYS)).split(".")
        node = config
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if kind == "delete":
            node.pop(path[-1], None)
            desc = f"delete {'.'.join(path)}"
        else:
            node[path[-1]] = data.draw(st.sampled_from(YAML_VALUES))
            desc = f"{'.'.join(path)} = {node[path[-1]]!r}"
        return yaml.safe_dump(config).encode(), desc
    if kind == "text":
        extra = data.draw(st.sampled_from([
            "\n\tname: tab", "\nname: a\nname: b", "\nx: &a [*a]", "\n" + "[" * 5000 + "]" * 5000,
            "\n!!python/object/apply:os.system ['true']", "\nname: \udcff", "\n? [a]\n: b",
            "\n" + "- " * 3000 + "x", "\nname: " + "{a: " * 2000 + "1" + "}" * 2000,
        ]))  # fmt: skip
        return raw + extra.encode("utf-8", "surrogateescape"), f"append {extra[:30]!r}"
    return byte_mutation(data, raw, header=len(raw))
