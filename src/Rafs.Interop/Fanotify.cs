using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Interop;

/// <summary>One FAN_PRE_ACCESS event: the kernel holds the reader until it gets a response for <see cref="Fd"/>.</summary>
public readonly record struct PreAccessEvent(int Fd, ulong Mask, int Pid, long Offset, long Count);

/// <summary>
/// fanotify pre-content hooks (Linux ≥ 6.14; constants as merged upstream, see shared KERNEL-NOTES): a group
/// whose marks on sparse cache files make the kernel ask before any read of them.
/// </summary>
public sealed unsafe partial class Fanotify : IDisposable
{
    public const uint FAN_CLOEXEC = 0x1;
    public const uint FAN_NONBLOCK = 0x2;
    public const uint FAN_CLASS_PRE_CONTENT = 0x8;
    public const ulong FAN_PRE_ACCESS = 0x00100000;
    public const uint FAN_MARK_ADD = 0x1;
    public const uint FAN_MARK_REMOVE = 0x2;
    public const uint FAN_ALLOW = 0x01;
    public const uint FAN_DENY = 0x02;
    /// <summary>FAN_DENY_ERRNO(EIO): the reader gets EIO.</summary>
    public const uint FAN_DENY_EIO = 0x05000002;
    private const int EventMetadataSize = 24;
    private const byte InfoTypeRange = 6;

    [LibraryImport("libc", SetLastError = true)] private static partial int fanotify_init(uint flags, uint eventFlags);
    [LibraryImport("libc", SetLastError = true)] private static partial int fanotify_mark(int fd, uint flags, ulong mask, int dirfd, byte* path);

    private readonly SafeFileHandle _group;

    /// <summary>
    /// Event fds are opened read-write so the handler can fill the file through them without re-triggering. The group
    /// is non-blocking: several handler threads poll it, and one that loses the race for an event must not sit in
    /// Libc.read() where shutdown cannot reach it.
    /// </summary>
    public Fanotify()
    {
        int fd = fanotify_init(FAN_CLASS_PRE_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, Libc.O_RDWR | Libc.O_LARGEFILE);
        if (fd < 0) throw PosixException.FromLastError("fanotify_init", null, "pre-content hooks need Linux 6.14+ and CAP_SYS_ADMIN");
        _group = new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Adopts a group created by another process (a supervisor that keeps it alive across handler crashes).</summary>
    public Fanotify(int inheritedFd)
    {
        _group = new SafeFileHandle(Libc.AdoptInherited(inheritedFd, "fanotify"), ownsHandle: true);
    }

    public SafeFileHandle Handle => _group;

    /// <summary>Lets a child process inherit the group fd (clears close-on-exec); returns the fd number.</summary>
    public int AllowInheritance() => Libc.AllowInheritance(Fd, "fanotify group");

    /// <summary>
    /// Answers, with EIO, permission events a crashed handler had read but not answered: their readers would
    /// otherwise wait forever. The kernel matches responses by the event's fd number alone, and the fds died with
    /// that process, so every plausible number is tried; numbers with no pending event are refused (ENOENT).
    /// Call only before this process reads events itself.
    /// </summary>
    public int DenyOrphanedEvents(int maxFd = 1 << 16)
    {
        int answered = 0;
        byte* reply = stackalloc byte[8];
        for (int fd = 0; fd < maxFd; fd++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(reply, 4), fd);
            BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(reply + 4, 4), FAN_DENY_EIO);
            if (Libc.write(Fd, reply, 8) == 8) answered++;
        }
        return answered;
    }

    /// <summary>Marks a file. Must happen before the file is opened by mount(2), or unfilled reads return zeros.</summary>
    public void MarkPreAccess(string path) => Mark(path, FAN_MARK_ADD);

    /// <summary>Stops events for a file (all of it is present now).</summary>
    public void Unmark(string path) => Mark(path, FAN_MARK_REMOVE);

    private void Mark(string path, uint flags)
    {
        var p = Libc.CString(path);
        fixed (byte* pp = p)
            if (fanotify_mark(Fd, flags, FAN_PRE_ACCESS, Libc.AT_FDCWD, pp) != 0)
                throw PosixException.FromLastError(flags == FAN_MARK_ADD ? "fanotify_mark(add)" : "fanotify_mark(remove)", path,
                    "marks need a cache directory on ext4, xfs or btrfs");
    }

    private int Fd => (int)_group.DangerousGetHandle();

    /// <summary>Waits up to <paramref name="timeoutMs"/> for events, so handler threads can notice shutdown.</summary>
    public bool WaitReadable(int timeoutMs) => Libc.WaitReadable(Fd, timeoutMs);

    /// <summary>Blocks until events arrive; returns them parsed (length-checked). Empty when the group was closed.</summary>
    public List<PreAccessEvent> Read(byte[] buffer)
    {
        nint n;
        fixed (byte* b = buffer) n = Libc.read(Fd, b, buffer.Length);
        if (n < 0)
        {
            int errno = Marshal.GetLastSystemError();
            if (errno is Libc.EINTR or Libc.EAGAIN) return [];
            throw new PosixException("Libc.read(fanotify)", null, errno);
        }
        return Parse(buffer.AsSpan(0, (int)n));
    }

    /// <summary>Decodes fanotify_event_metadata records and their range info records.</summary>
    public static List<PreAccessEvent> Parse(ReadOnlySpan<byte> data)
    {
        var events = new List<PreAccessEvent>();
        while (data.Length >= EventMetadataSize)
        {
            uint eventLength = BinaryPrimitives.ReadUInt32LittleEndian(data);
            ushort metadataLength = BinaryPrimitives.ReadUInt16LittleEndian(data[6..]);
            if (eventLength < EventMetadataSize || eventLength > data.Length || metadataLength < EventMetadataSize || metadataLength > eventLength)
                break;
            ulong mask = BinaryPrimitives.ReadUInt64LittleEndian(data[8..]);
            int fd = BinaryPrimitives.ReadInt32LittleEndian(data[16..]);
            int pid = BinaryPrimitives.ReadInt32LittleEndian(data[20..]);
            long offset = 0, count = -1;
            var info = data[metadataLength..(int)eventLength];
            while (info.Length >= 4)
            {
                byte type = info[0];
                ushort length = BinaryPrimitives.ReadUInt16LittleEndian(info[2..]);
                if (length < 4 || length > info.Length) break;
                if (type == InfoTypeRange && length >= 24)
                {
                    offset = BinaryPrimitives.ReadInt64LittleEndian(info[8..]);
                    count = BinaryPrimitives.ReadInt64LittleEndian(info[16..]);
                }
                info = info[length..];
            }
            events.Add(new PreAccessEvent(fd, mask, pid, offset, count));
            data = data[(int)eventLength..];
        }
        return events;
    }

    /// <summary>Answers an event and closes its fd.</summary>
    public void Respond(int eventFd, uint response)
    {
        byte* reply = stackalloc byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(reply, 4), eventFd);
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(reply + 4, 4), response);
        nint n = Libc.write(Fd, reply, 8);
        Libc.close(eventFd);
        if (n != 8) throw PosixException.FromLastError("Libc.write(fanotify response)", null);
    }

    public void Dispose() => _group.Dispose();
}
