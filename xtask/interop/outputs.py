"""Step outputs through the real Python modules, for `cargo xtask interop`.

`load`: reads a JSON list of {"file", "module", "expected"} on stdin, loads each file with the real module and
prints {"view": <JSON view of the loaded object>} per file. `dump`: reads a JSON list of {"file", "module",
"kwargs", "view"}, turns each view into a Python object and writes it with the real module, printing {"ok": true}.
The JSON view is the one of shared/vectors/pickle/README.md. Not part of any published crate.
"""

import json
import math
import pickle
import sys

import cloudpickle
import dill
import joblib
import msgpack


def to_view(o):
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, int):
        return o if -2**63 <= o < 2**63 else {"$bigint": str(o)}
    if isinstance(o, float):
        if math.isnan(o):
            return {"$float": "nan"}
        if math.isinf(o):
            return {"$float": "inf" if o > 0 else "-inf"}
        return o
    if isinstance(o, (bytes, bytearray)):
        return {"$bytes_hex": bytes(o).hex()}
    if isinstance(o, list):
        return [to_view(x) for x in o]
    if isinstance(o, tuple):
        return {"$tuple": [to_view(x) for x in o]}
    if isinstance(o, dict):
        markers = {"$bytes_hex", "$tuple", "$dict_items", "$bigint", "$float"}
        if all(isinstance(k, str) for k in o) and not (len(o) == 1 and next(iter(o)) in markers):
            return {k: to_view(v) for k, v in o.items()}
        return {"$dict_items": [[to_view(k), to_view(v)] for k, v in o.items()]}
    raise TypeError(f"not plain data: {type(o)!r}")


def from_view(v):
    if isinstance(v, list):
        return [from_view(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            (key, inner), = v.items()
            if key == "$bytes_hex":
                return bytes.fromhex(inner)
            if key == "$tuple":
                return tuple(from_view(x) for x in inner)
            if key == "$bigint":
                return int(inner)
            if key == "$float":
                return float(inner)
            if key == "$dict_items":
                return {from_view(k): from_view(x) for k, x in inner}
        return {k: from_view(x) for k, x in v.items()}
    return v


def load(path, module):
    if module == "pickle":
        with open(path, "rb") as f:
            return pickle.load(f)
    if module == "dill":
        with open(path, "rb") as f:
            return dill.load(f)
    if module == "cloudpickle":
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    if module == "joblib":
        return joblib.load(path)
    if module == "msgpack":
        with open(path, "rb") as f:
            return msgpack.unpackb(f.read(), raw=False, strict_map_key=False)
    raise ValueError(module)


def dump(obj, path, module, kwargs):
    if module == "pickle":
        with open(path, "wb") as f:
            pickle.dump(obj, f, **kwargs)
    elif module == "dill":
        with open(path, "wb") as f:
            dill.dump(obj, f, **kwargs)
    elif module == "cloudpickle":
        with open(path, "wb") as f:
            cloudpickle.dump(obj, f, **kwargs)
    elif module == "joblib":
        joblib.dump(obj, path, **kwargs)
    elif module == "msgpack":
        with open(path, "wb") as f:
            f.write(msgpack.packb(obj, use_bin_type=True))
    else:
        raise ValueError(module)


def main():
    mode = sys.argv[1]
    for item in json.load(sys.stdin):
        if mode == "load":
            print(json.dumps({"view": to_view(load(item["file"], item["module"]))}), flush=True)
        else:
            if isinstance(item["kwargs"].get("compress"), list):
                item["kwargs"]["compress"] = tuple(item["kwargs"]["compress"])
            dump(from_view(item["view"]), item["file"], item["module"], item["kwargs"])
            print(json.dumps({"ok": True}), flush=True)


if __name__ == "__main__":
    main()
