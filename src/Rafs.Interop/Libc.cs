using System.Runtime.InteropServices;
using System.Text;

[assembly: System.Runtime.CompilerServices.DisableRuntimeMarshalling]

namespace Rafs.Interop;

/// <summary>The raw libc entry points. One declaration per syscall; callers go through the typed wrappers.</summary>
internal static unsafe partial class Libc
{
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;
    public const int ENOENT = 2, EINTR = 4, ENXIO = 6, EAGAIN = 11, ENODEV = 19, EINVAL = 22, ERANGE = 34, ENODATA = 61, EOPNOTSUPP = 95;
    public const int O_RDWR = 0x2, O_NONBLOCK = 0x800, O_LARGEFILE = 0x8000, O_CLOEXEC = 0x80000;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);
    public const int F_DUPFD_CLOEXEC = 1030, F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int open(byte* path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, nint argument);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(long* fds, nuint count, int timeout);

    /// <summary>Opens a device node; returns the fd or throws with <paramref name="hint"/>.</summary>
    public static int OpenDevice(string path, int flags, string hint)
    {
        var p = CString(path);
        int fd;
        fixed (byte* pp = p) fd = open(pp, flags);
        if (fd < 0) throw PosixException.FromLastError("open", path, hint);
        return fd;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to be readable, so request threads can notice shutdown.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        // struct pollfd { int fd; short events; short revents; } packed into one 64-bit word; POLLIN = 1.
        long pfd = (uint)fd | (1L << 32);
        return poll(&pfd, 1, timeoutMs) > 0;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeout);

    public static int EpollCreate() => epoll_create1(0x80000);   // EPOLL_CLOEXEC

    public static int EpollAdd(int epfd, int fd, uint events)
    {
        byte* ev = stackalloc byte[12];   // struct epoll_event { u32 events; u64 data; } packed on x86_64
        *(uint*)ev = events;
        *(ulong*)(ev + 4) = (ulong)fd;
        return epoll_ctl(epfd, 1, fd, ev);   // EPOLL_CTL_ADD
    }

    public static int EpollWait(int epfd, int timeoutMs)
    {
        byte* ev = stackalloc byte[12];
        return epoll_wait(epfd, ev, 1, timeoutMs);
    }

    /// <summary>Takes an fd a supervisor passed down (checking it is open) and sets close-on-exec again.</summary>
    public static int AdoptInherited(int fd, string what)
    {
        if (fcntl(fd, F_GETFD, 0) < 0)
            throw PosixException.FromLastError("fcntl(F_GETFD)", $"fd {fd}", $"the {what} fd was not inherited from the supervisor");
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }

    /// <summary>Lets a child process inherit <paramref name="fd"/> (clears close-on-exec); returns it.</summary>
    public static int AllowInheritance(int fd, string what)
    {
        if (fcntl(fd, F_SETFD, 0) < 0) throw PosixException.FromLastError("fcntl(F_SETFD)", what);
        return fd;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint readlink(byte* path, byte* buffer, nint size);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint llistxattr(byte* path, byte* list, nint size);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint lgetxattr(byte* path, byte* name, byte* value, nint size);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int lsetxattr(byte* path, byte* name, byte* value, nint size, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mknod(byte* path, uint mode, ulong dev);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int lchown(byte* path, uint uid, uint gid);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int utimensat(int dirfd, byte* path, long* times, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fchmodat(int dirfd, byte* path, uint mode, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int symlink(byte* target, byte* linkPath);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int link(byte* existing, byte* newPath);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mount(byte* source, byte* target, byte* fsType, ulong flags, byte* data);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int umount2(byte* target, int flags);

    [LibraryImport("libc")]
    public static partial void sync();

    [LibraryImport("libc")]
    public static partial byte* strerror(int errnum);

    /// <summary>NUL-terminated UTF-8, as every path argument needs.</summary>
    public static byte[] CString(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    public static byte[] CString(ReadOnlySpan<byte> s)
    {
        var bytes = new byte[s.Length + 1];
        s.CopyTo(bytes);
        return bytes;
    }

    public static string ErrorText(int errno)
    {
        byte* text = strerror(errno);
        return text == null ? $"errno {errno}" : Marshal.PtrToStringUTF8((nint)text) ?? $"errno {errno}";
    }
}
