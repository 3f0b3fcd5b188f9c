using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Interop;

/// <summary>lstat-like metadata with nanosecond mtime, ids and device numbers (from statx).</summary>
public readonly record struct FileStatus(ulong Device, ulong Inode, int Mode, uint Nlink, uint Uid, uint Gid,
    uint RdevMajor, uint RdevMinor, long Size, long Blocks512, long MtimeSeconds, uint MtimeNanoseconds)
{
    private const int TypeMask = 0xF000;
    public bool IsDirectory => (Mode & TypeMask) == 0x4000;
    public bool IsRegular => (Mode & TypeMask) == 0x8000;
    public bool IsSymlink => (Mode & TypeMask) == 0xA000;
}

/// <summary>The POSIX file calls .NET does not offer: no-follow metadata, xattrs, device nodes, sparse maps.</summary>
public static unsafe class PosixFs
{
    private const int StatxSize = 256;

    public static FileStatus LStat(string path)
    {
        var p = Libc.CString(path);
        byte* buffer = stackalloc byte[StatxSize];
        fixed (byte* pp = p)
            if (Libc.statx(Libc.AT_FDCWD, pp, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, buffer) != 0)
                throw PosixException.FromLastError("statx", path);
        return Decode(new ReadOnlySpan<byte>(buffer, StatxSize));
    }

    /// <summary>A second fd on the same open file description (same flags, e.g. a fanotify event's no-notify mode).</summary>
    public static SafeFileHandle Duplicate(SafeFileHandle fd)
    {
        int copy = Libc.fcntl((int)fd.DangerousGetHandle(), Libc.F_DUPFD_CLOEXEC, 0);
        if (copy < 0) throw PosixException.FromLastError("fcntl(F_DUPFD_CLOEXEC)", null);
        return new SafeFileHandle(copy, ownsHandle: true);
    }

    public static FileStatus Stat(SafeFileHandle fd)
    {
        byte* buffer = stackalloc byte[StatxSize];
        byte empty = 0;
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            if (Libc.statx((int)fd.DangerousGetHandle(), &empty, Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, buffer) != 0)
                throw PosixException.FromLastError("statx", null);
        }
        finally
        {
            if (added) fd.DangerousRelease();
        }
        return Decode(new ReadOnlySpan<byte>(buffer, StatxSize));
    }

    /// <summary>struct statx is the same on every architecture; offsets from linux/stat.h.</summary>
    private static FileStatus Decode(ReadOnlySpan<byte> b)
    {
        ulong Make(uint major, uint minor) => ((ulong)major << 32) | minor;
        return new FileStatus(
            Device: Make(BinaryPrimitives.ReadUInt32LittleEndian(b[136..]), BinaryPrimitives.ReadUInt32LittleEndian(b[140..])),
            Inode: BinaryPrimitives.ReadUInt64LittleEndian(b[32..]),
            Mode: BinaryPrimitives.ReadUInt16LittleEndian(b[28..]),
            Nlink: BinaryPrimitives.ReadUInt32LittleEndian(b[16..]),
            Uid: BinaryPrimitives.ReadUInt32LittleEndian(b[20..]),
            Gid: BinaryPrimitives.ReadUInt32LittleEndian(b[24..]),
            RdevMajor: BinaryPrimitives.ReadUInt32LittleEndian(b[128..]),
            RdevMinor: BinaryPrimitives.ReadUInt32LittleEndian(b[132..]),
            Size: BinaryPrimitives.ReadInt64LittleEndian(b[40..]),
            Blocks512: BinaryPrimitives.ReadInt64LittleEndian(b[48..]),
            MtimeSeconds: BinaryPrimitives.ReadInt64LittleEndian(b[112..]),
            MtimeNanoseconds: BinaryPrimitives.ReadUInt32LittleEndian(b[120..]));
    }

    public static byte[] ReadLink(string path)
    {
        var p = Libc.CString(path);
        var buffer = new byte[4097];
        nint n;
        fixed (byte* pp = p, pb = buffer)
            n = Libc.readlink(pp, pb, buffer.Length);
        if (n < 0) throw PosixException.FromLastError("readlink", path);
        if (n >= buffer.Length) throw new IOException($"readlink {path}: target longer than 4096 bytes");
        return buffer.AsSpan(0, (int)n).ToArray();
    }

    /// <summary>All xattrs of a path (not following symlinks), sorted by name. Empty where the fs has none.</summary>
    public static List<KeyValuePair<string, byte[]>> ListXattrs(string path)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        var p = Libc.CString(path);
        byte[] names;
        while (true)
        {
            nint size;
            fixed (byte* pp = p) size = Libc.llistxattr(pp, null, 0);
            if (size < 0)
            {
                int errno = Marshal.GetLastSystemError();
                if (errno == Libc.EOPNOTSUPP) return result;
                throw new PosixException("llistxattr", path, errno);
            }
            if (size == 0) return result;
            names = new byte[size];
            nint got;
            fixed (byte* pp = p, pn = names) got = Libc.llistxattr(pp, pn, size);
            if (got >= 0) { names = names.AsSpan(0, (int)got).ToArray(); break; }
            if (Marshal.GetLastSystemError() != Libc.ERANGE) throw PosixException.FromLastError("llistxattr", path);
        }
        foreach (var raw in names.Split0())
        {
            var value = GetXattr(p, path, raw);
            if (value is not null) result.Add(new(Encoding.UTF8.GetString(raw), value));
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result;
    }

    private static IEnumerable<byte[]> Split0(this byte[] list)
    {
        int start = 0;
        for (int i = 0; i < list.Length; i++)
        {
            if (list[i] != 0) continue;
            if (i > start) yield return list[start..i];
            start = i + 1;
        }
    }

    private static byte[]? GetXattr(byte[] p, string path, byte[] rawName)
    {
        var name = Libc.CString(rawName);
        while (true)
        {
            nint size;
            fixed (byte* pp = p, pn = name) size = Libc.lgetxattr(pp, pn, null, 0);
            if (size < 0)
            {
                if (Marshal.GetLastSystemError() == Libc.ENODATA) return null; // removed meanwhile
                throw PosixException.FromLastError("lgetxattr", $"{path} {Encoding.UTF8.GetString(rawName)}");
            }
            var value = new byte[size];
            nint got;
            fixed (byte* pp = p, pn = name, pv = value) got = Libc.lgetxattr(pp, pn, pv, size);
            if (got >= 0) return value.AsSpan(0, (int)got).ToArray();
            if (Marshal.GetLastSystemError() != Libc.ERANGE)
                throw PosixException.FromLastError("lgetxattr", $"{path} {Encoding.UTF8.GetString(rawName)}");
        }
    }

    public static void SetXattr(string path, string name, ReadOnlySpan<byte> value)
    {
        var p = Libc.CString(path);
        var n = Libc.CString(name);
        fixed (byte* pp = p, pn = n, pv = value)
            if (Libc.lsetxattr(pp, pn, pv, value.Length, 0) != 0)
                throw PosixException.FromLastError("lsetxattr", $"{path} {name}");
    }

    public static void MakeNode(string path, int mode, uint major, uint minor)
    {
        // glibc's makedev encoding of dev_t
        ulong dev = ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) |
                    ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
        var p = Libc.CString(path);
        fixed (byte* pp = p)
            if (Libc.mknod(pp, (uint)mode, dev) != 0) throw PosixException.FromLastError("mknod", path);
    }

    public static void LChown(string path, uint uid, uint gid)
    {
        var p = Libc.CString(path);
        fixed (byte* pp = p)
            if (Libc.lchown(pp, uid, gid) != 0) throw PosixException.FromLastError("lchown", path);
    }

    /// <summary>Sets atime and mtime of the path itself (symlinks are not followed).</summary>
    public static void SetTimes(string path, long seconds, uint nanoseconds)
    {
        var p = Libc.CString(path);
        long* times = stackalloc long[4] { seconds, nanoseconds, seconds, nanoseconds };
        fixed (byte* pp = p)
            if (Libc.utimensat(Libc.AT_FDCWD, pp, times, Libc.AT_SYMLINK_NOFOLLOW) != 0)
                throw PosixException.FromLastError("utimensat", path);
    }

    /// <summary>chmod keeping setuid, setgid and sticky bits (do it after chown, which clears them).</summary>
    public static void Chmod(string path, int mode)
    {
        var p = Libc.CString(path);
        fixed (byte* pp = p)
            if (Libc.fchmodat(Libc.AT_FDCWD, pp, (uint)(mode & 0xFFF), 0) != 0) throw PosixException.FromLastError("chmod", path);
    }

    public static void Symlink(ReadOnlySpan<byte> target, string linkPath)
    {
        var t = Libc.CString(target);
        var p = Libc.CString(linkPath);
        fixed (byte* pt = t, pp = p)
            if (Libc.symlink(pt, pp) != 0) throw PosixException.FromLastError("symlink", linkPath);
    }

    public static void Link(string existingPath, string newPath)
    {
        var e = Libc.CString(existingPath);
        var n = Libc.CString(newPath);
        fixed (byte* pe = e, pn = n)
            if (Libc.link(pe, pn) != 0) throw PosixException.FromLastError("link", $"{existingPath} -> {newPath}");
    }

    /// <summary>
    /// The ranges of a file that hold data, from SEEK_DATA/SEEK_HOLE. Filesystems without hole reporting give one
    /// range covering the file.
    /// </summary>
    public static List<(long Offset, long Length)> DataExtents(SafeFileHandle fd, long size)
    {
        var extents = new List<(long, long)>();
        if (size <= 0) return extents;
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            int handle = (int)fd.DangerousGetHandle();
            long position = 0;
            while (position < size)
            {
                long data = Libc.lseek(handle, position, Libc.SEEK_DATA);
                if (data < 0)
                {
                    int errno = Marshal.GetLastSystemError();
                    if (errno == Libc.ENXIO) break;
                    if (errno is Libc.EINVAL or Libc.EOPNOTSUPP && position == 0) return [(0, size)];
                    throw new PosixException("lseek(SEEK_DATA)", null, errno);
                }
                if (data >= size) break;
                long hole = Libc.lseek(handle, data, Libc.SEEK_HOLE);
                if (hole < 0) throw PosixException.FromLastError("lseek(SEEK_HOLE)", null);
                hole = Math.Min(hole, size);
                extents.Add((data, hole - data));
                position = hole;
            }
        }
        finally
        {
            if (added) fd.DangerousRelease();
        }
        return extents;
    }
}
