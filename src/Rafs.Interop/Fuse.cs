using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Interop;

/// <summary>
/// The FUSE kernel ABI (include/uapi/linux/fuse.h, protocol 7.x): opcodes, flags and structure sizes. Only
/// what a read-only filesystem needs; every structure is little-endian and padded to 8 bytes.
/// </summary>
public static class FuseAbi
{
    public const uint KernelMajor = 7;
    /// <summary>7.31: max_pages, cache symlinks, explicit data invalidation; every kernel here speaks it.</summary>
    public const uint KernelMinor = 31;
    public const ulong RootId = 1;
    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;
    public const int AttrSize = 88;
    public const int EntryOutSize = 40 + AttrSize;
    public const int AttrOutSize = 16 + AttrSize;
    public const int OpenOutSize = 16;
    public const int InitOutSize = 64;
    public const int StatfsOutSize = 80;
    public const int DirentHeaderSize = 24;
    public const int XattrSizeOutSize = 8;

    /// <summary>The opcodes a read-only server answers (others get ENOSYS).</summary>
    public const uint LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, OPEN = 14, READ = 15, STATFS = 17,
        RELEASE = 18, GETXATTR = 22, LISTXATTR = 23, INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29,
        INTERRUPT = 36, DESTROY = 38, BATCH_FORGET = 42, READDIRPLUS = 44;

    public const uint FUSE_ASYNC_READ = 1 << 0, FUSE_DO_READDIRPLUS = 1 << 13, FUSE_READDIRPLUS_AUTO = 1 << 14,
        FUSE_PARALLEL_DIROPS = 1 << 18, FUSE_MAX_PAGES = 1 << 22, FUSE_CACHE_SYMLINKS = 1 << 23;

    public const uint FOPEN_KEEP_CACHE = 1 << 1, FOPEN_CACHE_DIR = 1 << 3;
}

/// <summary>
/// One FUSE session: /dev/fuse opened and mounted with mount(2) (as root no fusermount is needed). Requests are
/// read whole, one per read(); each reply is one write(). Several threads poll the same non-blocking device: the
/// kernel hands each request to exactly one of them, the others get EAGAIN.
/// </summary>
public sealed unsafe class FuseDevice : IDisposable
{
    private const ulong MS_NOSUID = 2, MS_NODEV = 4;

    private readonly SafeFileHandle _device;

    public string MountPoint { get; }

    private FuseDevice(SafeFileHandle device, string mountPoint)
    {
        _device = device;
        MountPoint = mountPoint;
    }

    public static bool IsPresent => File.Exists("/dev/fuse");

    /// <summary>Opens /dev/fuse and mounts it read-only at <paramref name="mountPoint"/> as <c>fuse.&lt;subtype&gt;</c>.</summary>
    public static FuseDevice Mount(string mountPoint, string source, string subtype)
    {
        // Non-blocking: threads poll, so stopping never waits on a read.
        int fd = Libc.OpenDevice("/dev/fuse", Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NONBLOCK, "the kernel needs CONFIG_FUSE_FS (modprobe fuse)");
        var device = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            // default_permissions: the kernel checks modes and owners itself (no ACCESS round trips); allow_other:
            // a filesystem for containers is read by every user.
            Mounts.Mount(source, mountPoint, "fuse." + subtype, Mounts.MS_RDONLY | MS_NOSUID | MS_NODEV,
                $"fd={fd},rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other");
            return new FuseDevice(device, mountPoint);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A per-thread waiter for requests. Request threads each wait on their own (EPOLLEXCLUSIVE), so a request
    /// wakes one thread: with poll(2) every idle thread woke for every request, and lost the race to read it.
    /// </summary>
    public ExclusiveWaiter CreateWaiter() => new((int)_device.DangerousGetHandle());

    /// <summary>
    /// Reads one request. Returns 0 when the session ended (unmounted: ENODEV) and -1 when the read should be
    /// retried (interrupted, or a request that was aborted before it could be read: ENOENT).
    /// </summary>
    public int Read(byte[] buffer)
    {
        nint n;
        fixed (byte* b = buffer) n = Libc.read((int)_device.DangerousGetHandle(), b, buffer.Length);
        if (n > 0) return (int)n;
        int errno = n == 0 ? Libc.ENODEV : Marshal.GetLastSystemError();
        return errno switch
        {
            Libc.ENODEV => 0,
            Libc.EINTR or Libc.ENOENT or Libc.EAGAIN => -1,
            _ => throw new PosixException("read", "/dev/fuse", errno),
        };
    }

    /// <summary>Sends one reply (header included). ENOENT means the request was interrupted: not an error.</summary>
    public void Write(ReadOnlySpan<byte> reply)
    {
        nint n;
        fixed (byte* b = reply) n = Libc.write((int)_device.DangerousGetHandle(), b, reply.Length);
        if (n == reply.Length) return;
        int errno = Marshal.GetLastSystemError();
        if (errno is Libc.ENOENT or Libc.ENODEV) return;
        throw new PosixException("write", "/dev/fuse", errno);
    }

    public void Dispose() => _device.Dispose();
}

/// <summary>
/// An epoll instance watching one fd for input with EPOLLEXCLUSIVE: when several threads each wait on their own
/// instance, new input wakes one of them, not all of them as poll(2) does.
/// </summary>
public sealed class ExclusiveWaiter : IDisposable
{
    private const uint EPOLLIN = 0x1, EPOLLEXCLUSIVE = 1u << 28;
    private readonly SafeFileHandle _epoll;

    public ExclusiveWaiter(int fd)
    {
        int epfd = Libc.EpollCreate();
        if (epfd < 0) throw PosixException.FromLastError("epoll_create1", null);
        _epoll = new SafeFileHandle(epfd, ownsHandle: true);
        if (Libc.EpollAdd(epfd, fd, EPOLLIN | EPOLLEXCLUSIVE) != 0)
        {
            var error = PosixException.FromLastError("epoll_ctl(EPOLLEXCLUSIVE)", null);
            _epoll.Dispose();
            throw error;
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for input; false on timeout.</summary>
    public bool Wait(int timeoutMs) => Libc.EpollWait((int)_epoll.DangerousGetHandle(), timeoutMs) > 0;

    public void Dispose() => _epoll.Dispose();
}
