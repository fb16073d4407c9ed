"""Enter the sandbox, then exec a command: ``python -I enter.py --policy JSON -- CMD ARGS...``.

Standard library only (no shiftboard imports): it starts in ~30 ms and runs as Triton's Python
backend stub wrapper, where nothing but the interpreter is known. Steps, in order:

1. ``unshare(2)`` a mount and a network namespace (the network namespace has only a downed
   loopback: no network); without root, a user namespace too, mapping the caller to root inside it;
2. make every mount private, take detached copies (``open_tree``) of what is bound back later,
   then make the whole tree read-only and nosuid (``mount_setattr(AT_RECURSIVE)``);
3. mount an empty tmpfs over each hidden directory (the state directory: secrets, catalog, other
   models' artifacts), over ``/tmp``, ``/run`` and ``/dev`` (re-populated with null, zero, full,
   random, urandom and a private or single-file ``/dev/shm``); bind back read-only what the command
   needs and read-write its scratch directories; when root, mount a fresh ``/proc`` with
   ``hidepid=invisible`` (other processes, their command lines included, are not listed);
4. set rlimits (CPU seconds, data segment, file size, open files, no core dumps), replace the
   environment with the policy's, drop to the policy's uid/gid if given, else drop every
   capability (the bounding set too, so ``execve`` grants none back), set ``no_new_privs``;
5. install a seccomp filter refusing syscalls a classifier never needs (ptrace, mount, namespace
   and module calls, keyrings, BPF, io_uring, internet sockets), then ``execve`` the command.

Any failure before ``execve`` exits with status 126 and one line on stderr starting ``sandbox:``.
With ``--triton-stub`` the command is Triton's Python-backend stub: its first argument is the
model's ``model.py`` (``<repo>/<model>/<version>/model.py``), its second the shared-memory region
name and its sixth the backend directory; the entry directory and the backend directory are bound
back read-only, the region file read-write.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import platform
import resource
import struct
import sys
from typing import Any, NamedTuple

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
# The "new mount API" syscalls share one number on every architecture.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
DEVICES = ("null", "zero", "full", "random", "urandom")
ALWAYS_HIDDEN = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")

# Syscalls refused with EPERM, by architecture: (name, number). None of them is needed to load
# and run a TorchScript classifier; each is a way out of the sandbox or into the kernel's attack surface.
_DENIED = {
    "x86_64": {"ptrace": 101, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
               "swapon": 167, "swapoff": 168, "reboot": 169, "kexec_load": 246, "kexec_file_load": 320,
               "init_module": 175, "finit_module": 313, "delete_module": 176, "add_key": 248,
               "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308, "process_vm_readv": 310,
               "process_vm_writev": 311, "perf_event_open": 298, "bpf": 321, "userfaultfd": 323,
               "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
               "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
               "fspick": 433, "mount_setattr": 442},
    "aarch64": {"ptrace": 117, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
                "swapon": 224, "swapoff": 225, "reboot": 142, "kexec_load": 104, "kexec_file_load": 294,
                "init_module": 105, "finit_module": 273, "delete_module": 106, "add_key": 217,
                "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268, "process_vm_readv": 270,
                "process_vm_writev": 271, "perf_event_open": 241, "bpf": 280, "userfaultfd": 282,
                "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
                "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
                "fspick": 433, "mount_setattr": 442},
}
# socket(2) and clone(2)/clone3(2) numbers and the audit architecture of each.
_SOCKET = {"x86_64": 41, "aarch64": 198}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_DENIED_FAMILIES = (2, 10, 17)  # AF_INET, AF_INET6, AF_PACKET
_NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* flag

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl(option: int, arg2: int | ctypes._CArgObject = 0, arg3: int | ctypes._CArgObject = 0) -> int:
    def word(value: int | ctypes._CArgObject) -> ctypes.c_ulong | ctypes._CArgObject:
        return ctypes.c_ulong(value) if isinstance(value, int) else value

    return int(_libc.prctl(ctypes.c_int(option), word(arg2), word(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0)))


class SandboxError(Exception):
    """Entering the sandbox failed (exit status 126)."""


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(err)} (errno {err})")
    return result


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {fstype or source} on {target}")


def _open_tree(path: str) -> int:
    return _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(),
                                ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)),
                  f"open_tree {path}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _set_attr(dirfd: int, path: str, attr: int, what: str) -> None:
    spec = _MountAttr(attr, 0, 0, 0)
    flags = AT_RECURSIVE | (AT_EMPTY_PATH if not path else 0)
    _check(_libc.syscall(SYS_MOUNT_SETATTR, dirfd, path.encode(), ctypes.c_uint(flags), ctypes.byref(spec),
                         ctypes.c_size_t(ctypes.sizeof(spec))), f"mount_setattr {what}")


def _move_mount(fd: int, target: str) -> None:
    _check(_libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(),
                         ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount onto {target}")


def _make_target(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if is_dir:
        os.mkdir(path)
    else:
        open(path, "a").close()


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_namespaces(user_ns: bool) -> None:
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | (CLONE_NEWUSER if user_ns else 0)
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare(mount, network" + (", user)" if user_ns else ")"))
    if user_ns:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")


class _Bind(NamedTuple):
    """A detached copy of ``path``'s tree, to be moved back over it once the rest is covered."""

    path: str
    fd: int
    readonly: bool
    is_dir: bool


class _Tmpfs(NamedTuple):
    """An empty tmpfs over ``path``; a hidden directory stays read-only once populated."""

    path: str
    writable: bool
    size: int


def _detached_binds(policy: dict[str, Any]) -> list[_Bind]:
    """Copies of what stays visible, taken before anything is covered; then / goes read-only."""
    binds: list[_Bind] = []
    for key, readonly in (("read", True), ("write", False)):
        for path in policy.get(key, []):
            if os.path.exists(path):
                binds.append(_Bind(path, _open_tree(path), readonly, os.path.isdir(path)))
    for name in DEVICES:
        binds.append(_Bind(f"/dev/{name}", _open_tree(f"/dev/{name}"), False, False))
    shm = policy.get("shm_file")
    if shm:
        binds.append(_Bind(shm, _open_tree(shm), False, False))
    _set_attr(AT_FDCWD, "/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, "read-only /")
    for path in policy.get("hide", []):
        if os.path.isfile(path):  # a hidden file: /dev/null over it
            binds.append(_Bind(path, _open_tree("/dev/null"), True, False))
    return binds


def _tmpfs_mounts(policy: dict[str, Any]) -> list[_Tmpfs]:
    hidden = [_Tmpfs(p, False, 1 << 20) for p in policy.get("hide", []) if not os.path.isfile(p)]
    scratch_bytes = int(policy.get("tmp_bytes", 64 << 20))
    scratch = [_Tmpfs(p, p in ("/tmp", "/var/tmp", "/dev/shm"), scratch_bytes) for p in ALWAYS_HIDDEN]
    return [*hidden, *scratch, _Tmpfs("/dev", False, 1 << 20)]


def _mount_tmpfs(mount: _Tmpfs, mounted: list[_Tmpfs]) -> None:
    path = mount.path
    if os.path.islink(path) or (not os.path.isdir(path) and not any(_inside(path, m.path) for m in mounted)):
        return  # nothing there to hide, and nowhere to create it
    _make_target(path, True)
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | (0 if path == "/dev" else MS_NODEV),
           f"size={mount.size},mode={'1777' if mount.writable else '0755'}")
    mounted.append(mount)
    if path == "/dev":
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"/dev/{name}")


def _mount_bind(bind: _Bind) -> None:
    if bind.readonly:
        _set_attr(bind.fd, "", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, bind.path)
    _make_target(bind.path, bind.is_dir)
    _move_mount(bind.fd, bind.path)
    os.close(bind.fd)


def build_mounts(policy: dict[str, Any], user_ns: bool) -> None:
    """Steps 2 and 3 of the module docstring."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    binds = _detached_binds(policy)
    # Shallowest first; at one depth the tmpfs before the bind that may land inside it.
    order: list[tuple[int, int, str, _Tmpfs | _Bind]] = [
        *((m.path.count("/"), 0, m.path, m) for m in _tmpfs_mounts(policy)),
        *((b.path.count("/"), 1, b.path, b) for b in binds),
    ]
    mounted: list[_Tmpfs] = []
    for _, _, _, item in sorted(order, key=lambda entry: entry[:3]):
        if isinstance(item, _Tmpfs):
            _mount_tmpfs(item, mounted)
        else:
            _mount_bind(item)
    for mount in reversed(mounted):
        if not mount.writable:
            _mount(None, mount.path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
                   | (0 if mount.path == "/dev" else MS_NODEV))
    if not user_ns:
        # hidepid: processes this one cannot ptrace are not listed (Triton's command line holds its key);
        # gid: a group nobody here is in (the default, 0, would see everything). An older kernel keeps
        # the host's /proc, where other processes' memory and environment stay ptrace-guarded.
        with contextlib.suppress(SandboxError):
            _mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible,gid=65533")


def set_limits(policy: dict[str, Any]) -> None:
    def limit(which: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))

    if policy.get("cpu_seconds"):
        cpu = int(policy["cpu_seconds"])
        limit(resource.RLIMIT_CPU, cpu, cpu + 5)  # SIGXCPU first, SIGKILL 5 s later
    if policy.get("memory_bytes"):
        limit(resource.RLIMIT_DATA, int(policy["memory_bytes"]))
    if policy.get("file_bytes"):
        limit(resource.RLIMIT_FSIZE, int(policy["file_bytes"]))
    limit(resource.RLIMIT_NOFILE, int(policy.get("open_files", 1024)))
    limit(resource.RLIMIT_CORE, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def drop_privileges(policy: dict[str, Any]) -> None:
    """Become the policy's uid/gid, or stay root without any capability (bounding set emptied)."""
    _check(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL), "clear ambient capabilities")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        _check(_prctl(PR_CAPBSET_DROP, cap), f"drop capability {cap} from the bounding set")
    if policy.get("uid") is not None:
        gid = int(policy.get("gid", policy["uid"]))
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(int(policy["uid"]), int(policy["uid"]), int(policy["uid"]))
    else:
        header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)()
        _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset (drop every capability)")
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")


def seccomp_program(arch: str) -> bytes:
    """A classic-BPF seccomp filter: EPERM for the denied syscalls, internet sockets and
    namespace-creating clones; ENOSYS for clone3 (its flags are out of reach, libc falls back to clone)."""
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, ..JSET.., BPF_RET|BPF_K
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog: list[tuple[int, int, int, int]] = [(ld, 0, 0, 4)]  # seccomp_data.arch
    prog.append((jeq, 1, 0, _AUDIT_ARCH[arch]))
    prog.append((ret, 0, 0, kill))
    prog.append((ld, 0, 0, 0))  # seccomp_data.nr
    if arch == "x86_64":
        prog.append((0x35, 0, 1, 0x40000000))  # BPF_JGE: x32 ABI numbers
        prog.append((ret, 0, 0, eperm))
    for number in sorted(_DENIED[arch].values()):
        prog.append((jeq, 0, 1, number))
        prog.append((ret, 0, 0, eperm))
    prog.append((jeq, 0, 1, _CLONE3))
    prog.append((ret, 0, 0, enosys))
    # socket(family, ...): args[0] low word at offset 16
    prog.append((jeq, 0, 2 * len(_DENIED_FAMILIES) + 2, _SOCKET[arch]))
    prog.append((ld, 0, 0, 16))
    for family in _DENIED_FAMILIES:
        prog.append((jeq, 0, 1, family))
        prog.append((ret, 0, 0, eperm))
    prog.append((ret, 0, 0, allow))
    # clone(flags, ...): refuse new namespaces
    prog.append((jeq, 0, 3, _CLONE[arch]))
    prog.append((ld, 0, 0, 16))
    prog.append((jset, 0, 1, _NAMESPACE_FLAGS))
    prog.append((ret, 0, 0, eperm))
    prog.append((ret, 0, 0, allow))
    return b"".join(struct.pack("HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


def install_seccomp() -> None:
    arch = platform.machine()
    if arch not in _DENIED:
        raise SandboxError(f"no seccomp filter for architecture {arch}")
    program = seccomp_program(arch)
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    _check(_prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog)), "install seccomp filter")


def triton_stub_paths(policy: dict[str, Any], cmd: list[str]) -> dict[str, Any]:
    """The policy for one Triton Python-backend stub: its model entry and backend directory readable."""
    if len(cmd) < 7:
        raise SandboxError(f"expected the Triton stub's arguments, got {len(cmd) - 1}")
    model_py = os.path.realpath(cmd[1])
    entry = os.path.dirname(os.path.dirname(model_py))
    repo = os.path.realpath(policy.get("model_repository") or os.path.dirname(entry))
    if os.path.dirname(entry) != repo:
        raise SandboxError(f"the stub's model {model_py} is not in the repository {repo}")
    region = "/dev/shm/" + cmd[2].lstrip("/")
    return {**policy, "read": [*policy.get("read", []), entry, os.path.realpath(cmd[6])],
            "shm_file": region if os.path.exists(region) else None}


def check() -> dict[str, str | None]:
    """Try each mechanism in a child process; name -> None when it works, else the error."""
    import tempfile

    base = tempfile.mkdtemp(prefix="shiftboard-sandbox-check-")
    hidden, kept = os.path.join(base, "hidden"), os.path.join(base, "hidden", "kept")
    os.makedirs(kept)
    _write(os.path.join(hidden, "secret"), "x")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        results: dict[str, str | None] = {}

        def step(name: str, fn: object) -> None:
            if any(results.values()):
                results[name] = "not tried (an earlier mechanism failed)"
                return
            try:
                fn()  # type: ignore[operator]
                results[name] = None
            except (SandboxError, OSError, ValueError) as exc:
                results[name] = str(exc)

        def mounts() -> None:
            build_mounts({"hide": [hidden], "read": [kept]}, os.getuid() != 0)
            if os.path.exists(os.path.join(hidden, "secret")) or not os.path.isdir(kept):
                raise SandboxError("a hidden file stayed visible")

        def seccomp() -> None:
            import socket

            install_seccomp()
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
            except PermissionError:
                return
            raise SandboxError("an internet socket was not refused")

        step("namespaces", lambda: enter_namespaces(os.getuid() != 0))
        step("mounts", mounts)
        step("rlimits", lambda: set_limits({"cpu_seconds": 3600, "memory_bytes": 1 << 34, "file_bytes": 1 << 34}))
        step("privileges", lambda: drop_privileges({}))
        step("seccomp", seccomp)
        os.write(write_fd, json.dumps(results).encode())
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.waitpid(pid, 0)
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    return json.loads(b"".join(chunks) or b"{}")


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        print(json.dumps(check()), flush=True)
        return 0
    if "--" not in argv:
        sys.stderr.write("sandbox: usage: enter.py (--policy JSON | --policy-file FILE) [--triton-stub] -- CMD...\n")
        return 126
    split = argv.index("--")
    options, cmd = argv[:split], argv[split + 1:]
    try:
        if "--policy-file" in options:
            with open(options[options.index("--policy-file") + 1]) as f:
                policy = json.load(f)
        else:
            policy = json.loads(options[options.index("--policy") + 1])
        if not cmd:
            raise SandboxError("no command to run")
        if "--triton-stub" in options:
            policy = triton_stub_paths(policy, cmd)
        user_ns = os.getuid() != 0
        enter_namespaces(user_ns)
        build_mounts(policy, user_ns)
        os.chdir(policy.get("cwd") or "/")
        set_limits(policy)
        env = {k: v for k, v in os.environ.items() if k in set(policy.get("env_keep", []))}
        env.update(policy.get("env", {}))
        drop_privileges(policy)
        if policy.get("seccomp", True):
            install_seccomp()
    except (SandboxError, OSError, ValueError, KeyError, IndexError) as exc:
        sys.stderr.write(f"sandbox: {exc}\n")
        return 126
    try:
        os.execvpe(cmd[0], cmd, env)
    except OSError as exc:
        sys.stderr.write(f"sandbox: cannot run {cmd[0]}: {exc.strerror}\n")
        return 126


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
