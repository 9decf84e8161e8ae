#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""os-win's vmutils10.add_vtpm against a QEMU/libvirt host, through
libmsvm-security's GObject introspection (python3-gi; docs/python.rst).

os-win (OpenStack's Hyper-V library) adds a vTPM to a VM this way: it reads
the VM's Msvm_SecuritySettingData, sets TpmEnabled,
EncryptStateAndVmMigrationTraffic and ShieldingRequested, and calls
Msvm_SecurityService's SetKeyProtector, SetSecurityPolicy and
ModifySecuritySettings with the serialized instance, each answer checked
(0, or 4096 and a job polled to completion).  The same code here, with
MsvmSecurity.Service in place of the WMI service and files in place of the
PDK's key protector and policy data.

    python3 examples/add_vtpm.py --connect qemu:///session --domain vm1 \\
        --key-protector kp.bin --policy policy.bin [--shielded]

Exit status 0 when every call answered 0 (or 4096 with a job that
completed), 1 when one failed (its Hyper-V return value is printed), 2 for a
usage error.
"""
import argparse
import sys
import time
import xml.etree.ElementTree as ET

import gi

gi.require_version("MsvmSecurity", "1.0")
from gi.repository import GLib, MsvmSecurity  # noqa: E402

JOB_STARTED = int(MsvmSecurity.Error.JOB_STARTED)   # 4096
JOB_COMPLETED = 7                                    # CIM_ConcreteJob JobState


class HyperVException(Exception):
    """A call that did not succeed, with its Hyper-V return value."""

    def __init__(self, ret_val, message):
        name = MsvmSecurity.return_code_name(ret_val) or "unknown"
        super().__init__(f"ReturnValue: {ret_val} ({name}): {message}")
        self.ret_val = ret_val


class JobUtils:
    """os-win's jobutils: a method's answer is 0, or 4096 and a job to poll."""

    def __init__(self, svc, timeout):
        self._svc = svc
        self._timeout = timeout

    def check_ret_val(self, result):
        if result.return_value == JOB_STARTED:
            self._wait_for_job(result.job)
        elif result.return_value != 0:
            raise HyperVException(result.return_value, result.message or "")

    def _wait_for_job(self, job_path):
        deadline = time.monotonic() + self._timeout
        while True:
            job = self._svc.get_job(job_path)
            if job.job_state >= JOB_COMPLETED:
                break
            if time.monotonic() >= deadline:
                raise HyperVException(int(MsvmSecurity.Error.TIMEOUT),
                                      f"job {job.instance_id} still in JobState "
                                      f"{job.job_state} after {self._timeout} s")
            time.sleep(0.5)
        if job.job_state != JOB_COMPLETED or job.error_code != 0:
            raise HyperVException(job.error_code or int(MsvmSecurity.Error.FAILED),
                                  job.error_description or f"job {job.instance_id} failed")


class VMUtils10:
    """The part of os-win's vmutils10 that manages a VM's vTPM."""

    _SECURITY_SETTING_DATA = "Msvm_SecuritySettingData"

    def __init__(self, uri=None, job_timeout=600):
        # os-win: self._sec_svc = self._conn.Msvm_SecurityService()[0]
        self._sec_svc = MsvmSecurity.Service.open(uri)
        self._jobutils = JobUtils(self._sec_svc, job_timeout)

    def _security_profile(self, vm_name):
        """The VM's Msvm_SecuritySettingData (CIM-XML): the settings applied
        before, or a new instance for a VM msvm-security never changed."""
        try:
            text = self._sec_svc.get_security_settings(
                vm_name, MsvmSecurity.SettingsFormat.CIM_XML)
            return ET.fromstring(text)
        except GLib.Error as e:
            if e.code != int(MsvmSecurity.Error.INVALID_STATE):
                raise
            return ET.Element("INSTANCE", CLASSNAME=self._SECURITY_SETTING_DATA)

    @staticmethod
    def _set_property(instance, name, value):
        text = "TRUE" if value else "FALSE"
        for prop in instance.findall("PROPERTY"):
            if prop.get("NAME", "").lower() == name.lower():
                instance.remove(prop)
        prop = ET.SubElement(instance, "PROPERTY", NAME=name, TYPE="boolean")
        ET.SubElement(prop, "VALUE").text = text

    def add_vtpm(self, vm_name, key_protector, policy_data, shielded):
        """Adds a vtpm and enables it with encryption or shielded option."""
        options = MsvmSecurity.CallOptions()
        options.set_domain(vm_name)

        security_profile = self._security_profile(vm_name)
        self._set_property(security_profile, "EncryptStateAndVmMigrationTraffic", True)
        self._set_property(security_profile, "TpmEnabled", True)
        self._set_property(security_profile, "ShieldingRequested", shielded)
        sec_profile_serialized = ET.tostring(security_profile, encoding="utf-8")

        result = self._sec_svc.set_key_protector(sec_profile_serialized, key_protector,
                                                 options)
        self._jobutils.check_ret_val(result)

        result = self._sec_svc.set_security_policy(sec_profile_serialized, policy_data,
                                                   options)
        self._jobutils.check_ret_val(result)

        result = self._sec_svc.modify_security_settings(sec_profile_serialized, options)
        self._jobutils.check_ret_val(result)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="os-win's vmutils10.add_vtpm on a libvirt host: SetKeyProtector, "
                    "SetSecurityPolicy and ModifySecuritySettings (TpmEnabled, "
                    "EncryptStateAndVmMigrationTraffic, ShieldingRequested) on a stopped VM, "
                    "through MsvmSecurity (python3-gi).")
    parser.add_argument("-c", "--connect", metavar="URI", default=None,
                        help="libvirt URI: qemu:///system or qemu:///session "
                             "(default: libvirt's default)")
    parser.add_argument("-d", "--domain", required=True, metavar="NAME",
                        help="the VM, by name or UUID")
    parser.add_argument("--key-protector", required=True, metavar="FILE",
                        help="the key protector bytes (os-win: the PDK file's KeyProtector)")
    parser.add_argument("--policy", required=True, metavar="FILE",
                        help="the security policy bytes (os-win: the PDK file's PolicyData)")
    parser.add_argument("--shielded", action="store_true",
                        help="ShieldingRequested TRUE (UEFI VMs: secure boot, SMM, no "
                             "display or serial console)")
    parser.add_argument("--job-timeout", type=float, default=600, metavar="S",
                        help="seconds to poll a job (4096) for (default 600)")
    args = parser.parse_args(argv)

    with open(args.key_protector, "rb") as f:
        key_protector = f.read()
    with open(args.policy, "rb") as f:
        policy_data = f.read()
    try:
        vmutils = VMUtils10(args.connect, args.job_timeout)
        vmutils.add_vtpm(args.domain, key_protector, policy_data, args.shielded)
    except GLib.Error as e:
        # the GError's code is the Hyper-V return value
        name = MsvmSecurity.return_code_name(e.code) or "unknown"
        print(f"ReturnValue: {e.code} ({name}): {e.message}", file=sys.stderr)
        return 1
    except HyperVException as e:
        print(e, file=sys.stderr)
        return 1
    print(f"the vTPM of {args.domain} is enabled and encrypted"
          f"{' (shielded)' if args.shielded else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
