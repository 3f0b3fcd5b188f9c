using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Interop;

/// <summary>Opcodes of on-demand requests (include/uapi/linux/cachefiles.h).</summary>
public enum CachefilesOpcode : uint
{
    Open = 0,
    Close = 1,
    Read = 2,
}

/// <summary>
/// One on-demand request. OPEN carries the volume and cookie keys and a new anonymous fd for the cache object;
/// READ a range of that object; CLOSE nothing (the daemon drops the object's fd).
/// </summary>
public readonly record struct CachefilesMessage(uint MessageId, CachefilesOpcode Opcode, uint ObjectId,
    string VolumeKey, byte[] CookieKey, int Fd, ulong Offset, ulong Length)
{
    public const int HeaderSize = 16;
    public const int OpenHeaderSize = 16;
    public const int ReadSize = 16;
    /// <summary>CACHEFILES_MSG_MAX_SIZE: no message is longer, so one buffer of this size reads any.</summary>
    public const int MaxSize = 1024;

    /// <summary>
    /// Parses one message, checking every length against the bytes read. Returns null (with the reason) for a
    /// malformed message, so the caller logs it and goes on instead of crashing the request loop.
    /// </summary>
    public static CachefilesMessage? Parse(ReadOnlySpan<byte> data, out string? error)
    {
        error = null;
        if (data.Length < HeaderSize) return Fail(out error, $"{data.Length} bytes is shorter than the {HeaderSize}-byte header");
        uint id = BinaryPrimitives.ReadUInt32LittleEndian(data);
        var opcode = (CachefilesOpcode)BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        uint objectId = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]);
        if (length < HeaderSize || length > data.Length)
            return Fail(out error, $"message {id} claims {length} bytes, {data.Length} were read");
        var payload = data[HeaderSize..(int)length];
        switch (opcode)
        {
            case CachefilesOpcode.Open:
            {
                if (payload.Length < OpenHeaderSize) return Fail(out error, $"OPEN {id}: payload of {payload.Length} bytes is too short");
                uint volumeSize = BinaryPrimitives.ReadUInt32LittleEndian(payload);
                uint cookieSize = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
                int fd = BinaryPrimitives.ReadInt32LittleEndian(payload[8..]);
                var keys = payload[OpenHeaderSize..];
                if ((ulong)volumeSize + cookieSize > (ulong)keys.Length)
                    return Fail(out error, $"OPEN {id}: keys of {volumeSize}+{cookieSize} bytes overrun the {keys.Length}-byte payload");
                var volume = keys[..(int)volumeSize];
                int nul = volume.IndexOf((byte)0);   // a NUL-terminated string; tolerate a missing NUL
                string volumeKey = Encoding.UTF8.GetString(nul >= 0 ? volume[..nul] : volume);
                byte[] cookie = keys.Slice((int)volumeSize, (int)cookieSize).ToArray();
                return new CachefilesMessage(id, opcode, objectId, volumeKey, cookie, fd, 0, 0);
            }
            case CachefilesOpcode.Read:
            {
                if (payload.Length < ReadSize) return Fail(out error, $"READ {id}: payload of {payload.Length} bytes is too short");
                ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                ulong count = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]);
                if (offset > long.MaxValue || count > int.MaxValue || offset + count > long.MaxValue)
                    return Fail(out error, $"READ {id}: range {offset}+{count} is out of bounds");
                return new CachefilesMessage(id, opcode, objectId, "", [], -1, offset, count);
            }
            case CachefilesOpcode.Close:
                return new CachefilesMessage(id, opcode, objectId, "", [], -1, 0, 0);
            default:
                return Fail(out error, $"message {id}: unknown opcode {(uint)opcode}");
        }
    }

    private static CachefilesMessage? Fail(out string error, string message)
    {
        error = message;
        return null;
    }
}

/// <summary>
/// /dev/cachefiles in on-demand mode (CONFIG_CACHEFILES_ONDEMAND, Linux 5.19+): the daemon binds a cache
/// directory, then answers the kernel's OPEN/READ/CLOSE requests for cache objects it does not have. Closing the
/// device unbinds the cache and fails every mount on it, so a supervisor keeps it open across daemon crashes
/// and a restarted daemon sends <c>restore</c> (Linux 6.2+) to get the requests in flight again.
/// </summary>
public sealed unsafe class CachefilesDevice : IDisposable
{
    public const string DevicePath = "/dev/cachefiles";
    /// <summary>_IOW(0x98, 1, int).</summary>
    private const uint CACHEFILES_IOC_READ_COMPLETE = 0x40049801;

    private readonly SafeFileHandle _device;

    /// <summary>True when the running kernel has cachefiles (the device exists); on-demand mode shows at bind.</summary>
    public static bool IsPresent => File.Exists(DevicePath);

    private CachefilesDevice(SafeFileHandle device) => _device = device;

    /// <summary>Opens the device non-blocking (several request threads poll it; one that loses a race must not block).</summary>
    public static CachefilesDevice Open()
    {
        int fd = Libc.OpenDevice(DevicePath, Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NONBLOCK,
            "the kernel needs CONFIG_CACHEFILES (and CACHEFILES_ONDEMAND) and the caller CAP_SYS_ADMIN");
        return new CachefilesDevice(new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>Adopts the device a supervisor opened and bound.</summary>
    public static CachefilesDevice Adopt(int inheritedFd) =>
        new(new SafeFileHandle(Libc.AdoptInherited(inheritedFd, "cachefiles"), ownsHandle: true));

    private int Fd => (int)_device.DangerousGetHandle();

    /// <summary>Sets the cache directory and tag and binds in on-demand mode. The directory must be on ext4/xfs/btrfs.</summary>
    public void Bind(string directory, string tag)
    {
        Directory.CreateDirectory(directory);
        Command("dir " + Path.GetFullPath(directory));
        Command("tag " + tag);
        try
        {
            Command("bind ondemand");
        }
        catch (PosixException e) when (e.Errno == Libc.EOPNOTSUPP || e.Errno == Libc.EINVAL)
        {
            throw new PosixException("bind ondemand", directory, e.Errno,
                "the kernel lacks CONFIG_CACHEFILES_ONDEMAND, or the cache directory is on tmpfs (use ext4, xfs or btrfs)");
        }
    }

    /// <summary>Asks the kernel to send again every request a dead daemon had read but not answered.</summary>
    public void Restore() => Command("restore");

    /// <summary>Answers an OPEN: the object's size, or a negative errno to fail the mount's lookup.</summary>
    public void CompleteOpen(uint messageId, long sizeOrNegativeErrno) => Command($"copen {messageId},{sizeOrNegativeErrno}");

    /// <summary>Writes one daemon command (each command is one write).</summary>
    public void Command(string command)
    {
        var bytes = Encoding.ASCII.GetBytes(command);
        nint n;
        fixed (byte* b = bytes) n = Libc.write(Fd, b, bytes.Length);
        if (n != bytes.Length) throw PosixException.FromLastError($"write(cachefiles '{command.Split(' ')[0]}')", DevicePath);
    }

    /// <summary>Lets a child process inherit the device fd (clears close-on-exec); returns the fd number.</summary>
    public int AllowInheritance() => Libc.AllowInheritance(Fd, DevicePath);

    public bool WaitReadable(int timeoutMs) => Libc.WaitReadable(Fd, timeoutMs);

    /// <summary>Reads one message into <paramref name="buffer"/>; 0 when another thread took it or none is pending.</summary>
    public int Read(byte[] buffer)
    {
        nint n;
        fixed (byte* b = buffer) n = Libc.read(Fd, b, buffer.Length);
        if (n >= 0) return (int)n;
        int errno = Marshal.GetLastSystemError();
        if (errno is Libc.EINTR or Libc.EAGAIN) return 0;
        throw new PosixException("read", DevicePath, errno);
    }

    /// <summary>Tells the kernel a READ is answered; it then reads the range from the cache file (EIO if still missing).</summary>
    public static void CompleteRead(SafeFileHandle anonymousFd, uint messageId)
    {
        if (Libc.ioctl((int)anonymousFd.DangerousGetHandle(), CACHEFILES_IOC_READ_COMPLETE, (nint)messageId) != 0)
            throw PosixException.FromLastError("ioctl(CACHEFILES_IOC_READ_COMPLETE)", $"message {messageId}");
    }

    public void Dispose() => _device.Dispose();
}
