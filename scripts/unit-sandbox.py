#!/usr/bin/python3
"""Run a command confined as systemd would confine a unit's [Service].

    scripts/unit-sandbox.py UNIT [--rw DIR]... [--keep DIR]... -- COMMAND [ARG]...

On a machine where systemd is not PID 1 (a container, a CI runner), this
applies to COMMAND the sandboxing directives of UNIT that can be applied
without systemd, from the unit file itself, so that a test of the unit
checks what the unit says:

  - a private mount namespace: ProtectSystem=strict (every mount read-only
    but /dev, /proc, /sys, the private /tmp, ReadWritePaths= and the --rw
    dirs), ProtectHome=yes|read-only|tmpfs, PrivateTmp, PrivateDevices,
    ProtectKernelTunables, ProtectControlGroups, ProtectKernelModules and
    ProtectKernelLogs (the paths they hide), PrivateMounts;
  - a private UTS namespace (ProtectHostname);
  - CapabilityBoundingSet and AmbientCapabilities= (setpriv), and
    NoNewPrivileges (implied, as systemd does, by any seccomp directive);
  - seccomp filters, one per directive as systemd installs them:
    SystemCallFilter (groups expanded by `systemd-analyze syscall-filter`,
    systemd's own tables), SystemCallErrorNumber, SystemCallArchitectures=
    native, RestrictAddressFamilies, MemoryDenyWriteExecute,
    RestrictNamespaces, RestrictRealtime, RestrictSUIDSGID, LockPersonality,
    and the system calls ProtectClock, ProtectKernelModules,
    ProtectKernelLogs and ProtectHostname deny;
  - UMask and LimitNOFILE.

It prints, on stderr, which directives it applied and which it could not
(the service manager's own: Type=, WatchdogSec=, ...; cgroup and device
ACLs), and refuses a sandboxing directive it does not know, so that a new
one in the unit cannot go untested silently.

--rw DIR stands for the unit's RuntimeDirectory=, StateDirectory= and
LogsDirectory= (writable); --keep DIR keeps DIR visible, read-only, even
below the private /tmp (the binary under test). Needs root, unshare(1),
setpriv(1), mount(8) and python3-seccomp (scripts/test-deps.sh).
"""

import errno
import os
import subprocess
import sys

STAGE = "HOSTCTL_SANDBOX_STAGE"

# Directives that confine the service and that this script applies.
APPLIED = {
    "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "ProtectKernelTunables", "ProtectControlGroups", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectClock", "ProtectHostname", "PrivateMounts",
    "ReadWritePaths", "CapabilityBoundingSet", "AmbientCapabilities",
    "NoNewPrivileges", "SystemCallFilter", "SystemCallErrorNumber",
    "SystemCallArchitectures", "RestrictAddressFamilies",
    "MemoryDenyWriteExecute", "RestrictNamespaces", "RestrictRealtime",
    "RestrictSUIDSGID", "LockPersonality", "UMask", "LimitNOFILE",
    "ExecStart",
}
# The service manager's own: how to start, stop, notify, restart, and the
# dirs it makes (--rw stands for them). Nothing to confine.
MANAGER = {
    "Type", "NotifyAccess", "ExecReload", "Restart", "RestartSec",
    "TimeoutStartSec", "TimeoutStopSec", "WatchdogSec", "KillMode",
    "KillSignal", "RuntimeDirectory", "RuntimeDirectoryMode",
    "RuntimeDirectoryPreserve", "StateDirectory", "StateDirectoryMode",
    "LogsDirectory", "LogsDirectoryMode",
}
# Sandboxing this script cannot apply without systemd; a unit using one is
# run without it, and the script says so.
NOT_APPLIED = {
    "DeviceAllow": "a cgroup device ACL (PrivateDevices is applied)",
    "DevicePolicy": "a cgroup device ACL (PrivateDevices is applied)",
    "IPAddressDeny": "a cgroup BPF program",
    "IPAddressAllow": "a cgroup BPF program",
    "ProtectProc": "a procfs mount option in a PID namespace",
    "ProcSubset": "a procfs mount option in a PID namespace",
    "KeyringMode": "the service manager's session keyring",
    "RemoveIPC": "done when the unit stops",
}


def parse_unit(path):
    """Returns [(key, value)] of the [Service] section, in order."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section == "Service" and "=" in line:
                k, v = line.split("=", 1)
                out.append((k.strip(), v.strip()))
    return out


def values(unit, key):
    return [v for k, v in unit if k == key]


def last(unit, key, default=""):
    vs = values(unit, key)
    return vs[-1] if vs else default


def yes(unit, key):
    return last(unit, key).lower() in ("yes", "true", "1", "on")


def report(unit):
    unknown = []
    for k, _ in unit:
        if k in APPLIED or k in MANAGER:
            continue
        if k in NOT_APPLIED:
            log("not applied: %s (%s)" % (k, NOT_APPLIED[k]))
        else:
            unknown.append(k)
    if unknown:
        sys.exit("unit-sandbox: does not know %s: apply it here, or list it as not applicable" % ", ".join(sorted(set(unknown))))
    log("applied: " + ", ".join(sorted({k for k, _ in unit if k in APPLIED and k != "ExecStart"})))


def log(msg):
    print("unit-sandbox: " + msg, file=sys.stderr, flush=True)


def run(*args, **kw):
    subprocess.run(args, check=True, **kw)


def mounts():
    """[(target, options)] from /proc/self/mountinfo, in mount order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            target = fields[4].encode().decode("unicode_escape")
            out.append((target, fields[5]))
    return out


def under(path, dirs):
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def stage_mounts(unit, rw, keep, argv):
    """In the new mount and UTS namespaces: build the file system view."""
    run("mount", "--make-rprivate", "/")
    # Hold the dirs to keep before anything hides them (they may be in
    # /tmp): they are bound back from these descriptors at the end.
    held = [(d, os.open(d, os.O_RDONLY | os.O_DIRECTORY), d in rw) for d in rw + keep]

    if yes(unit, "PrivateTmp"):
        for d in ("/tmp", "/var/tmp"):
            run("mount", "-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", d)
    # What systemd's inaccessible nodes are: a dir and a file of mode 000.
    inacc = "/tmp/.unit-sandbox" if yes(unit, "PrivateTmp") else None
    if inacc is None:
        inacc = "/run/unit-sandbox-%d" % os.getpid()
        os.mkdir(inacc, 0o700)
        run("mount", "-t", "tmpfs", "-o", "mode=700", "tmpfs", inacc)
    os.makedirs(inacc + "/dir", exist_ok=True)
    open(inacc + "/file", "w").close()
    os.chmod(inacc + "/dir", 0)
    os.chmod(inacc + "/file", 0)

    def hide(path):
        if os.path.lexists(path):
            src = inacc + ("/dir" if os.path.isdir(path) else "/file")
            run("mount", "--bind", src, path)
            run("mount", "-o", "remount,bind,ro", path)

    home = last(unit, "ProtectHome", "no").lower()
    for d in ("/home", "/root", "/run/user"):
        if not os.path.isdir(d):
            continue
        if home in ("yes", "true"):
            hide(d)
        elif home == "tmpfs":
            run("mount", "-t", "tmpfs", "-o", "ro,mode=755", "tmpfs", d)
        elif home == "read-only":
            run("mount", "--rbind", d, d)
            run("mount", "-o", "remount,bind,ro", d)

    if yes(unit, "PrivateDevices"):
        dev = "/tmp/.unit-sandbox-dev" if yes(unit, "PrivateTmp") else inacc + "/dev"
        os.makedirs(dev)
        run("mount", "-t", "tmpfs", "-o", "mode=755,nosuid,noexec", "tmpfs", dev)
        for n in ("null", "zero", "full", "random", "urandom", "tty"):
            open(dev + "/" + n, "w").close()
            run("mount", "--bind", "/dev/" + n, dev + "/" + n)
        for d in ("pts", "shm", "mqueue", "hugepages"):
            if os.path.isdir("/dev/" + d):
                os.mkdir(dev + "/" + d)
                run("mount", "--bind", "/dev/" + d, dev + "/" + d)
        os.symlink("pts/ptmx", dev + "/ptmx")
        os.symlink("/proc/self/fd", dev + "/fd")
        for i, n in enumerate(("stdin", "stdout", "stderr")):
            os.symlink("/proc/self/fd/%d" % i, dev + "/" + n)
        run("mount", "--move", dev, "/dev")
        os.rmdir(dev)

    if yes(unit, "ProtectKernelTunables"):
        for p in ("/proc/sys", "/proc/sysrq-trigger", "/proc/latency_stats", "/proc/acpi",
                  "/proc/timer_stats", "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq"):
            if os.path.exists(p):
                run("mount", "--bind", p, p)
                run("mount", "-o", "remount,bind,ro", p)
    if yes(unit, "ProtectKernelTunables") or yes(unit, "ProtectControlGroups"):
        for target, opts in mounts():
            if under(target, ["/sys"]) and "ro" not in opts.split(","):
                if target.startswith("/sys/fs/cgroup") or yes(unit, "ProtectKernelTunables"):
                    run("mount", "-o", "remount,bind,ro", target)
    if yes(unit, "ProtectKernelModules"):
        hide("/usr/lib/modules")
    if yes(unit, "ProtectKernelLogs"):
        hide("/proc/kmsg")
        if not yes(unit, "PrivateDevices"):
            hide("/dev/kmsg")

    # The dirs to keep, back at their paths, each its own mount so that
    # ProtectSystem's remounts below leave the writable ones writable.
    writable = []
    for d, fd, is_rw in held:
        os.makedirs(d, exist_ok=True)
        # --no-canonicalize: the kernel, not mount(8), must resolve the
        # descriptor (its path now names the new, empty dir).
        run("mount", "--no-canonicalize", "--rbind", "/proc/self/fd/%d" % fd, d, pass_fds=(fd,))
        os.close(fd)
        if is_rw:
            writable.append(d)
        else:
            run("mount", "-o", "remount,bind,ro", d)
    for d in values(unit, "ReadWritePaths"):
        for p in d.split():
            p = p.lstrip("-")
            if os.path.exists(p):
                run("mount", "--rbind", p, p)
                writable.append(p)

    system = last(unit, "ProtectSystem", "no").lower()
    if system == "strict":
        api = ["/proc", "/dev", "/sys"] + (["/tmp", "/var/tmp"] if yes(unit, "PrivateTmp") else [])
        for target, opts in mounts():
            if under(target, api) or under(target, writable) or "ro" in opts.split(","):
                continue
            run("mount", "-o", "remount,bind,ro", target)
    elif system not in ("no", "false", ""):
        sys.exit("unit-sandbox: ProtectSystem=%s: only strict is implemented" % system)

    # Capabilities and no_new_privs, then the seccomp stage.
    caps = " ".join(values(unit, "CapabilityBoundingSet")).split()
    bounding = "-all" + "".join(",+" + c.lower().removeprefix("cap_") for c in caps) if caps else "+all"
    cmd = ["setpriv", "--bounding-set=" + bounding, "--inh-caps=-all"]
    if values(unit, "AmbientCapabilities") in ([], [""]):
        cmd.append("--ambient-caps=-all")
    if yes(unit, "NoNewPrivileges") or seccomp_directives(unit):
        cmd.append("--no-new-privs")
    os.environ[STAGE] = "seccomp"
    os.execvp("setpriv", cmd + ["--", sys.executable, os.path.abspath(__file__)] + argv)


def seccomp_directives(unit):
    keys = {"SystemCallFilter", "RestrictAddressFamilies", "MemoryDenyWriteExecute",
            "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
            "SystemCallArchitectures", "ProtectClock", "ProtectKernelModules",
            "ProtectKernelLogs", "ProtectHostname"}
    return any(k in keys and v and v.lower() not in ("no", "false") for k, v in unit)


def syscall_groups():
    """{"@name": [entries]} from systemd's own tables."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                         check=True, capture_output=True, text=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif line.startswith("#") or not line.strip():
            cur = None if line.startswith("#") else cur
        elif cur is not None and not line.strip().startswith("#"):
            cur.append(line.strip())
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            out |= expand(groups[n], groups, seen)
        else:
            out.add(n)
    return out


def stage_seccomp(unit, argv):
    """Load one seccomp filter per directive, as systemd does, then exec."""
    from seccomp import ALLOW, ERRNO, Arg, EQ, GE, LT, MASKED_EQ, SyscallFilter

    def errno_of(name):
        return getattr(errno, name) if name else errno.EPERM

    def deny(rules, err=errno.EPERM):
        """A filter that allows all but rules: [(syscall, [Arg...])]."""
        f = SyscallFilter(defaction=ALLOW)
        for name, args in rules:
            try:
                f.add_rule(ERRNO(err), name, *args)
            except (RuntimeError, ValueError):
                pass  # not a system call of this architecture
        return f

    groups = syscall_groups()
    filters = []
    families = " ".join(values(unit, "RestrictAddressFamilies")).split()
    if families:
        allowed = {getattr(__import__("socket"), fam) for fam in families}
        filters.append(deny([("socket", [Arg(0, EQ, af)]) for af in range(0, 46) if af not in allowed]
                            + [("socket", [Arg(0, GE, 46)])], errno.EAFNOSUPPORT))
    if yes(unit, "MemoryDenyWriteExecute"):
        PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000
        filters.append(deny([
            ("mmap", [Arg(2, MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)]),
            ("mprotect", [Arg(2, MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
            ("pkey_mprotect", [Arg(2, MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
            ("shmat", [Arg(2, MASKED_EQ, SHM_EXEC, SHM_EXEC)]),
        ]))
    if yes(unit, "RestrictNamespaces"):
        CLONE_NEW = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080]
        rules = [("setns", [])]
        for flag in CLONE_NEW:
            rules += [("unshare", [Arg(0, MASKED_EQ, flag, flag)]), ("clone", [Arg(0, MASKED_EQ, flag, flag)])]
        filters.append(deny(rules))
        filters.append(deny([("clone3", [])], errno.ENOSYS))  # glibc falls back to clone
    if yes(unit, "RestrictRealtime"):
        filters.append(deny([("sched_setscheduler", [Arg(1, EQ, p)]) for p in (1, 2, 6)]))
    if yes(unit, "RestrictSUIDSGID"):
        S_ISUID, S_ISGID = 0o4000, 0o2000
        O_CREAT = os.O_CREAT
        rules = []
        for bit in (S_ISUID, S_ISGID):
            rules += [("chmod", [Arg(1, MASKED_EQ, bit, bit)]), ("fchmod", [Arg(1, MASKED_EQ, bit, bit)]),
                      ("fchmodat", [Arg(2, MASKED_EQ, bit, bit)]), ("mkdir", [Arg(1, MASKED_EQ, bit, bit)]),
                      ("mkdirat", [Arg(2, MASKED_EQ, bit, bit)]), ("mknod", [Arg(1, MASKED_EQ, bit, bit)]),
                      ("mknodat", [Arg(2, MASKED_EQ, bit, bit)]), ("creat", [Arg(1, MASKED_EQ, bit, bit)]),
                      ("open", [Arg(1, MASKED_EQ, O_CREAT, O_CREAT), Arg(2, MASKED_EQ, bit, bit)]),
                      ("openat", [Arg(2, MASKED_EQ, O_CREAT, O_CREAT), Arg(3, MASKED_EQ, bit, bit)])]
        filters.append(deny(rules))
    if yes(unit, "LockPersonality"):
        # Only PER_LINUX (0) and asking (0xffffffff) are let through.
        filters.append(deny([("personality", [Arg(0, GE, 1), Arg(0, LT, 0xFFFFFFFF)])]))
    extra = []
    if yes(unit, "ProtectClock"):
        extra += ["@clock"]
    if yes(unit, "ProtectKernelModules"):
        extra += ["@module"]
    if yes(unit, "ProtectKernelLogs"):
        extra += ["syslog"]
    if yes(unit, "ProtectHostname"):
        extra += ["sethostname", "setdomainname"]
    if extra:
        filters.append(deny([(s, []) for s in expand(extra, groups)]))

    # SystemCallFilter: an allow list (its first line), then ~deny lines.
    lines = values(unit, "SystemCallFilter")
    if lines:
        allow, denied = None, set()
        for v in lines:
            if v.startswith("~"):
                names = expand(v[1:].split(), groups)
                if allow is None:
                    denied |= names
                else:
                    allow -= names
            else:
                names = expand(v.split(), groups)
                allow = names if allow is None else allow | names
        err = errno_of(last(unit, "SystemCallErrorNumber"))
        if allow is None:
            filters.append(deny([(s, []) for s in denied], err))
        else:
            # systemd always lets the exec through.
            allow |= {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}
            f = SyscallFilter(defaction=ERRNO(err))
            for s in sorted(allow):
                try:
                    f.add_rule(ALLOW, s)
                except (RuntimeError, ValueError):
                    pass
            filters.append(f)  # last: it may deny seccomp() itself
    if last(unit, "SystemCallArchitectures") not in ("", "native"):
        sys.exit("unit-sandbox: SystemCallArchitectures=%s: only native is implemented" % last(unit, "SystemCallArchitectures"))
    # A libseccomp filter allows only the native architecture: any other
    # is killed, as SystemCallArchitectures=native does.

    umask = last(unit, "UMask")
    if umask:
        os.umask(int(umask, 8))
    nofile = last(unit, "LimitNOFILE")
    if nofile:
        import resource
        n = resource.RLIM_INFINITY if nofile == "infinity" else int(nofile)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        except (ValueError, OSError):
            # Raising the hard limit needs CAP_SYS_RESOURCE, which a
            # container may not have: systemd would fail the start; here
            # the soft limit goes as high as the hard one.
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log("LimitNOFILE=%s: capped at the hard limit here, %d" % (nofile, hard))
    sys.stdout.flush()
    sys.stderr.flush()
    for f in filters:
        f.load()
    os.execvp(argv[0], argv)


def main():
    args = sys.argv[1:]
    if "--" not in args or not args or args[0].startswith("-"):
        sys.exit(__doc__)
    i = args.index("--")
    opts, command = args[:i], args[i + 1:]
    unit_path, opts = opts[0], opts[1:]
    rw, keep = [], []
    while opts:
        if opts[0] in ("--rw", "--keep") and len(opts) > 1:
            (rw if opts[0] == "--rw" else keep).append(os.path.abspath(opts[1]))
            opts = opts[2:]
        else:
            sys.exit(__doc__)
    if not command:
        sys.exit(__doc__)
    unit = parse_unit(unit_path)
    stage = os.environ.pop(STAGE, "")
    if stage == "":
        report(unit)
        os.environ[STAGE] = "mounts"
        ns = ["unshare", "--mount", "--propagation", "private"]
        if yes(unit, "ProtectHostname"):
            ns.append("--uts")
        os.execvp("unshare", ns + ["--", sys.executable, os.path.abspath(__file__)] + sys.argv[1:])
    elif stage == "mounts":
        stage_mounts(unit, rw, keep, sys.argv[1:])
    elif stage == "seccomp":
        stage_seccomp(unit, command)


if __name__ == "__main__":
    main()
