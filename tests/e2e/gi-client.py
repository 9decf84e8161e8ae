#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""test-python.sh's client: one call of the provider through the typelib
(python3-gi, MsvmSecurity 1.0), as Python code on a nova host makes it; one
JSON object on stdout with what came back.

  gi-client.py URI get-kp SETTINGS [--domain D]
  gi-client.py URI add-vtpm SETTINGS KP POLICY      (os-win's three calls)
  gi-client.py URI set-key-protector SETTINGS KP [--domain D]
  gi-client.py URI set-security-policy SETTINGS POLICY [--defer] [--domain D]
  gi-client.py URI get-job REFERENCE
  gi-client.py URI list-jobs
  gi-client.py URI guardians VM UUID   (the guardian calls: a backup round trip)

A method that raised GLib.Error gives {"error": code, "domain": ..., "message": ...}."""
import json
import sys

import gi

gi.require_version("MsvmSecurity", "1.0")
from gi.repository import GLib, MsvmSecurity  # noqa: E402


def result_dict(r):
    assert isinstance(r, MsvmSecurity.CallResult), type(r)
    return {"return_value": r.return_value, "job": r.job, "message": r.message}


def job_dict(j):
    assert isinstance(j, MsvmSecurity.Job), type(j)
    return {f: getattr(j, f) for f in ("instance_id", "reference", "vm_uuid", "method",
                                       "job_state", "error_code", "error_description",
                                       "percent_complete", "time_submitted",
                                       "time_of_last_state_change")}


def error_code(call, *args):
    try:
        call(*args)
    except GLib.Error as e:
        return e.code
    return None


def guardians(svc, vm, uuid):
    """Issue 10's calls: this guardian, a backup of VM's protector for it
    imported back (the same entry: 0), and the refusals of the others."""
    pem = svc.guardian_show()
    listed = svc.guardian_list()
    assert all(isinstance(g, MsvmSecurity.GuardianInfo) for g in listed), listed
    bundle, exported = svc.export_protector(vm, MsvmSecurity.SECURITY_GUARDIAN_LOCAL,
                                            MsvmSecurity.ExportFlags.NONE)
    imported = svc.import_protector(bundle.get_data(), MsvmSecurity.CallFlags.NONE)
    altered = bytearray(bundle.get_data())
    altered[len(altered) // 2] ^= 0x01
    return {
        "pem_type": type(pem).__name__,
        "pem_certificates": pem.count("-----BEGIN CERTIFICATE-----"),
        "list": [{"name": g.name, "local": g.local, "signing": g.signing_fingerprint,
                  "encryption": g.encryption_fingerprint} for g in listed],
        "bundle_type": type(bundle).__module__.split(".")[-1] + "." + type(bundle).__name__,
        "bundle_len": len(bundle.get_data()),
        "export": result_dict(exported),
        "import": result_dict(imported),
        "import_altered": error_code(svc.import_protector, bytes(altered),
                                     MsvmSecurity.CallFlags.NONE),
        "trust_garbage": error_code(svc.guardian_trust, "peer", b"not a certificate",
                                    MsvmSecurity.CallFlags.NONE),
        "forget_unknown_guardian": error_code(svc.guardian_forget, "nosuchpeer"),
        "export_unknown_guardian": error_code(svc.export_protector, vm, "nosuchpeer",
                                              MsvmSecurity.ExportFlags.NONE),
        "forget_defined": error_code(svc.forget, uuid),
    }


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main(argv):
    uri, cmd, rest = argv[0], argv[1], argv[2:]
    options = None
    if "--domain" in rest:
        i = rest.index("--domain")
        options = options or MsvmSecurity.CallOptions()
        options.set_domain(rest[i + 1])
        del rest[i:i + 2]
    if "--defer" in rest:
        rest.remove("--defer")
        options = options or MsvmSecurity.CallOptions()
        options.set_flags(MsvmSecurity.CallFlags.DEFER)
    svc = MsvmSecurity.Service.open(uri)
    out = {}
    if cmd == "get-kp":
        kp = svc.get_key_protector(read(rest[0]), options)
        out = {"type": type(kp).__module__.split(".")[-1] + "." + type(kp).__name__,
               "hex": kp.get_data().hex(), "is_bytes": isinstance(kp.get_data(), bytes)}
    elif cmd == "add-vtpm":
        settings, kp, pol = read(rest[0]), read(rest[1]), read(rest[2])
        out = {"SetKeyProtector": result_dict(svc.set_key_protector(settings, kp, options)),
               "SetSecurityPolicy": result_dict(svc.set_security_policy(settings, pol, options)),
               "ModifySecuritySettings": result_dict(svc.modify_security_settings(settings,
                                                                                  options))}
    elif cmd == "set-key-protector":
        out = result_dict(svc.set_key_protector(read(rest[0]), read(rest[1]), options))
    elif cmd == "set-security-policy":
        out = result_dict(svc.set_security_policy(read(rest[0]), read(rest[1]), options))
    elif cmd == "get-job":
        out = job_dict(svc.get_job(rest[0]))
    elif cmd == "list-jobs":
        out = {"jobs": [job_dict(j) for j in svc.list_jobs()]}
    elif cmd == "guardians":
        out = guardians(svc, rest[0], rest[1])
    else:
        raise SystemExit(f"unknown command {cmd}")
    svc.close()
    return out


if __name__ == "__main__":
    try:
        res = main(sys.argv[1:])
    except GLib.Error as e:
        res = {"error": e.code, "domain": e.domain, "message": e.message,
               "name": MsvmSecurity.return_code_name(e.code)}
    print(json.dumps(res))
