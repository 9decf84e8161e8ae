#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The built typelib (MsvmSecurity-1.0.typelib) loads through GIRepository,
and its functions are exactly the library's exported ABI: every symbol of
plugin/libmsvm-security.map (which test-library-symbols.sh checks against
the public headers and the library) is a function, method, constructor or
type-init function of the typelib, every symbol the typelib names is in the
map and resolves in the shared library the typelib names, and the error
enumeration is registered for the msvm-security-error-quark domain.  The
guardian calls (issue 10) have the arguments Python sees (direction, type,
ownership: a list of GuardianInfo, the bundle as GLib.Bytes, the result as a
CallResult) and raise 32777 on a service open() did not make.  TAP on
stdout.

Usage: test-typelib.py MAP TYPELIB_DIR"""
import ctypes
import re
import sys

NS, VERSION = "MsvmSecurity", "1.0"
results = []


def check(ok, what, diag=None):
    results.append((bool(ok), what, diag))


def main():
    map_path, typelib_dir = sys.argv[1], sys.argv[2]
    text = re.sub(r"/\*.*?\*/", "", open(map_path).read(), flags=re.S)
    glob = re.search(r"global:(.*?)local:", text, re.S).group(1)
    in_map = set(re.findall(r"\b(msvm_[a-z0-9_]+)\s*;", glob))

    import gi
    gi.require_version("GIRepository", "2.0")
    from gi.repository import GIRepository as GIR
    from gi.repository import GLib

    repo = GIR.Repository.get_default()
    GIR.Repository.prepend_search_path(typelib_dir)
    try:
        repo.require(NS, VERSION, 0)
    except GLib.Error as e:
        check(False, "the typelib loads", str(e))
        return
    check(True, f"{NS}-{VERSION}.typelib loads (from {repo.get_typelib_path(NS)})")
    check(repo.get_typelib_path(NS).startswith(typelib_dir),
          "  ... the built one, not an installed one", repo.get_typelib_path(NS))

    T = GIR.InfoType
    symbols = {}          # C symbol -> where in the typelib
    error_domains = {}

    def add(sym, where):
        if sym:
            symbols[sym] = where

    def add_methods(info, n_fn, get_fn):
        for i in range(n_fn(info)):
            m = get_fn(info, i)
            add(GIR.function_info_get_symbol(m), f"{info.get_name()}.{m.get_name()}")

    for i in range(repo.get_n_infos(NS)):
        info = repo.get_info(NS, i)
        t = info.get_type()
        name = info.get_name()
        if t == T.FUNCTION:
            add(GIR.function_info_get_symbol(info), name)
        elif t == T.OBJECT:
            add(GIR.object_info_get_type_init(info), f"{name} (type)")
            add_methods(info, GIR.object_info_get_n_methods, GIR.object_info_get_method)
        elif t in (T.STRUCT, T.BOXED):
            add_methods(info, GIR.struct_info_get_n_methods, GIR.struct_info_get_method)
            init = GIR.registered_type_info_get_type_init(info)
            if init and init != "intern":
                add(init, f"{name} (type)")
        elif t in (T.ENUM, T.FLAGS):
            add_methods(info, GIR.enum_info_get_n_methods, GIR.enum_info_get_method)
            init = GIR.registered_type_info_get_type_init(info)
            if init and init != "intern":
                add(init, f"{name} (type)")
            dom = GIR.enum_info_get_error_domain(info)
            if dom:
                error_domains[name] = dom

    missing = sorted(in_map - set(symbols))
    check(not missing, f"every one of the {len(in_map)} exported symbols is in the typelib",
          "missing: " + " ".join(missing))
    extra = sorted(set(symbols) - in_map)
    check(not extra, f"the typelib names no symbol outside the map ({len(symbols)} symbols)",
          "not exported: " + " ".join(f"{s} ({symbols[s]})" for s in extra))

    lib_name = repo.get_shared_library(NS)
    check(lib_name == "libmsvm-security.so.0", "the typelib loads libmsvm-security.so.0",
          lib_name)
    try:
        lib = ctypes.CDLL(lib_name.split(",")[0])
        unresolved = [s for s in sorted(symbols) if not hasattr(lib, s)]
    except OSError as e:
        unresolved = [f"({e})"]
    check(not unresolved, "  ... and every symbol it names resolves there",
          " ".join(unresolved))

    check(error_domains == {"Error": "msvm-security-error-quark"},
          "MsvmSecurity.Error is the msvm-security-error-quark error domain",
          repr(error_domains))

    # What a Python caller sees of them.
    from gi.repository import MsvmSecurity as M
    check(M.Service.open.__doc__ is not None and issubclass(M.Service, gi.repository.GObject.Object),
          "MsvmSecurity.Service is a GObject with the constructor open()")
    check(int(M.Error.INVALID_STATE) == 32775 and int(M.Error.NOT_AVAILABLE) == 32777,
          "MsvmSecurity.Error's values are the Hyper-V return codes")
    try:
        M.Service.open("qemu+ssh://host.example/system")
        check(False, "a remote URI raises GLib.Error 32770", "no error")
    except GLib.Error as e:
        check(e.domain == "msvm-security-error-quark" and e.code == 32770 and
              e.matches(M.error_quark(), M.Error.NOT_SUPPORTED),
              "a remote URI raises GLib.Error, domain msvm-security-error-quark, code 32770",
              f"{e.domain} {e.code} {e.message}")
    opts = M.CallOptions()
    opts.set_domain("vm1")
    opts.set_flags(M.CallFlags.DEFER | M.CallFlags.FORCE)
    opts.set_old_passphrase(b"old")
    check(opts.get_domain() == "vm1" and opts.get_flags() == M.CallFlags.DEFER | M.CallFlags.FORCE,
          "MsvmSecurity.CallOptions() takes a domain and flags")
    unconnected = M.Service()
    try:
        unconnected.get_key_protector(b"<INSTANCE/>", None)
        check(False, "a service not made by open() raises 32777", "no error")
    except GLib.Error as e:
        check(e.code == 32777, "a service not made by open() raises 32777, never crashes",
              e.message)

    # The guardian calls (issue 10) as Python sees them: their arguments'
    # directions, types and ownership, read from the typelib.
    def describe_type(ti):
        tag = GIR.type_info_get_tag(ti)
        if tag == GIR.TypeTag.INTERFACE:
            return GIR.type_info_get_interface(ti).get_name()
        if tag == GIR.TypeTag.ARRAY:
            return "[" + describe_type(GIR.type_info_get_param_type(ti, 0)) + "]"
        if tag == GIR.TypeTag.GLIST:
            return "list[" + describe_type(GIR.type_info_get_param_type(ti, 0)) + "]"
        return GIR.type_tag_to_string(tag)

    def describe(info_name, method):
        fn = GIR.object_info_find_method(repo.find_by_name(NS, info_name), method)
        if fn is None:
            return None
        out = []
        args = [GIR.callable_info_get_arg(fn, i) for i in range(GIR.callable_info_get_n_args(fn))]
        lengths = {GIR.type_info_get_array_length(GIR.arg_info_get_type(a)) for a in args}
        for i, a in enumerate(args):
            if i in lengths:
                continue  # an array's length: Python passes the array alone
            d = GIR.arg_info_get_direction(a)
            word = {GIR.Direction.IN: "in", GIR.Direction.OUT: "out"}.get(d, "inout")
            if d == GIR.Direction.OUT:
                word += "/" + {GIR.Transfer.EVERYTHING: "full",
                               GIR.Transfer.NOTHING: "none"}.get(
                                   GIR.arg_info_get_ownership_transfer(a), "container")
            out.append(f"{word} {a.get_name()}:{describe_type(GIR.arg_info_get_type(a))}")
        ret = GIR.callable_info_get_return_type(fn)
        skip = GIR.callable_info_skip_return(fn)
        return ", ".join(out) + (" -> skip" if skip else " -> " + describe_type(ret))

    expected = {
        "guardian_show": "out/full ret_certificates:utf8 -> skip",
        "guardian_trust": "in name:utf8, in certificates:[guint8], in flags:CallFlags, "
                          "out/full ret_result:CallResult -> skip",
        "guardian_list": "out/full ret_guardians:list[GuardianInfo] -> skip",
        "guardian_forget": "in name:utf8, out/full ret_result:CallResult -> skip",
        "export_protector": "in domain:utf8, in guardian:utf8, in flags:ExportFlags, "
                            "out/full ret_bundle:Bytes, out/full ret_result:CallResult -> skip",
        "import_protector": "in bundle:[guint8], in flags:CallFlags, "
                            "out/full ret_result:CallResult -> skip",
        "forget": "in domain_uuid:utf8, out/full ret_result:CallResult -> skip",
    }
    for method, want in expected.items():
        got = describe("Service", method)
        check(got == want, f"Service.{method}({want})", f"got: {got}")
    gi_fields = sorted(f.get_name() for f in (
        GIR.struct_info_get_field(repo.find_by_name(NS, "GuardianInfo"), i)
        for i in range(GIR.struct_info_get_n_fields(repo.find_by_name(NS, "GuardianInfo")))))
    check(gi_fields == ["encryption_fingerprint", "local", "name", "signing_fingerprint",
                        "subject"],
          "MsvmSecurity.GuardianInfo has name, local, the two fingerprints and subject",
          repr(gi_fields))
    check(int(M.ExportFlags.WITH_STATE) == 1 and M.SECURITY_GUARDIAN_LOCAL == "local",
          "MsvmSecurity.ExportFlags.WITH_STATE is 1, SECURITY_GUARDIAN_LOCAL is 'local'")
    for call, args in (("guardian_list", ()), ("export_protector",
                                                ("vm1", "local", M.ExportFlags.WITH_STATE)),
                       ("import_protector", (b"bundle", M.CallFlags.FORCE))):
        try:
            getattr(unconnected, call)(*args)
            check(False, f"an unconnected {call} raises 32777", "no error")
        except GLib.Error as e:
            check(e.code == 32777, f"an unconnected {call}{args!r} raises 32777", e.message)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the test is a failure, with its reason
        import traceback
        check(False, "the test ran to its end", traceback.format_exc())
    print(f"1..{len(results)}")
    for n, (ok, what, diag) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {n} - {what}")
        if not ok and diag:
            for line in str(diag).splitlines():
                print(f"# {line}")
