using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using Rafs.Format;
using Rafs.Image;
using Rafs.Interop;
using static Rafs.Interop.FuseAbi;

namespace Rafs.Daemon;

/// <summary>
/// Serves one EROFS image over FUSE from Rafs's own reader, for hosts whose kernel has neither fanotify
/// pre-content hooks nor cachefiles on-demand mode. /dev/fuse is spoken directly rather than through libfuse3:
/// a read-only filesystem needs a dozen opcodes, the daemon keeps its own threads and buffers (no native
/// callbacks into NativeAOT code, no libfuse thread pool), and no package beyond the kernel is needed.
/// The image is immutable, so the kernel is told to cache everything for long: entries (negative ones too),
/// attributes, symlinks, directory listings and file pages (FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR).
/// </summary>
public sealed class FuseServer : IDisposable
{
    private const int ENOENT = 2, EIO = 5, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENOSYS = 38, ENODATA = 61, ERANGE = 34, EROFS = 30;
    /// <summary>The image never changes under a mount: let the kernel keep entries and attributes for a day.</summary>
    private const ulong ValidSeconds = 86400;
    private const int MaxPages = 256;   // 1 MiB per READ
    private const int MaxCached = 100_000;

    private readonly ErofsImage _image;
    private readonly FuseDevice _device;
    private readonly Action<string>? _log;
    private readonly RequestThreads _threads;
    private readonly ConcurrentDictionary<ulong, ErofsInode> _inodes = new();
    private readonly ConcurrentDictionary<ulong, DirEntry[]> _directories = new();
    private long _requests, _errors;
    private readonly long[] _byOpcode = new long[64];

    public string MountPoint => _device.MountPoint;
    public long Requests => Interlocked.Read(ref _requests);
    /// <summary>Requests of one opcode (what the kernel did not answer from its own caches).</summary>
    public long RequestsOf(uint opcode) => opcode < _byOpcode.Length ? Interlocked.Read(ref _byOpcode[opcode]) : 0;
    /// <summary>Requests answered with EIO (data that could not be fetched or verified, or a corrupt image).</summary>
    public long Errors => Interlocked.Read(ref _errors);

    private FuseServer(ErofsImage image, FuseDevice device, Action<string>? log)
    {
        _image = image;
        _device = device;
        _log = log;
        _threads = new RequestThreads("fuse", $"fuse {device.MountPoint}", log);
    }

    /// <summary>Mounts <paramref name="image"/> at <paramref name="mountPoint"/> and starts <paramref name="threads"/> request threads.</summary>
    public static FuseServer Mount(ErofsImage image, string mountPoint, int threads, Action<string>? log = null)
    {
        var device = FuseDevice.Mount(Path.GetFullPath(mountPoint), "rafs", "rafs");
        var server = new FuseServer(image, device, log);
        server._threads.Start(threads, () =>
        {
            var request = new byte[64 * 1024];
            var reply = new byte[OutHeaderSize + MaxPages * 4096];
            var waiter = device.CreateWaiter();
            Func<bool> step = () =>
            {
                // Read first: under load a request is usually waiting, and a wait would cost a syscall more.
                int n = device.Read(request);
                if (n == 0) return false;   // unmounted: the session is over
                if (n > 0) server.Handle(request.AsSpan(0, n), reply);
                else waiter.Wait(200);
                return true;
            };
            return (step, (IDisposable?)waiter);
        });
        return server;
    }

    private void Handle(ReadOnlySpan<byte> request, byte[] reply)
    {
        if (request.Length < InHeaderSize) return;
        uint opcode = BinaryPrimitives.ReadUInt32LittleEndian(request[4..]);
        ulong unique = BinaryPrimitives.ReadUInt64LittleEndian(request[8..]);
        ulong nodeId = BinaryPrimitives.ReadUInt64LittleEndian(request[16..]);
        var body = request[InHeaderSize..];
        if (opcode is FORGET or BATCH_FORGET or INTERRUPT) return;   // no reply; nodes hold no state here
        Interlocked.Increment(ref _requests);
        if (opcode < _byOpcode.Length) Interlocked.Increment(ref _byOpcode[opcode]);
        int length;
        try
        {
            length = opcode switch
            {
                INIT => Init(body, reply),
                LOOKUP => Lookup(nodeId, body, reply),
                GETATTR => GetAttr(nodeId, reply),
                READLINK => ReadLink(nodeId, reply),
                OPEN => Open(nodeId, body, reply, FOPEN_KEEP_CACHE, directory: false),
                OPENDIR => Open(nodeId, body, reply, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR, directory: true),
                READ => Read(nodeId, body, reply),
                READDIR => ReadDirectory(nodeId, body, reply, plus: false),
                READDIRPLUS => ReadDirectory(nodeId, body, reply, plus: true),
                RELEASE or RELEASEDIR or DESTROY => OutHeaderSize,
                STATFS => StatFs(reply),
                GETXATTR => GetXattr(nodeId, body, reply),
                LISTXATTR => ListXattr(nodeId, body, reply),
                SETATTR => -EROFS,
                _ => -ENOSYS,   // FLUSH, ACCESS, LSEEK, STATX…: the kernel falls back or stops asking
            };
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ImageCorruptException or ImageUnsupportedException
                                      or UnauthorizedAccessException or HttpRequestException or ArgumentException)
        {
            Interlocked.Increment(ref _errors);
            _log?.Invoke($"fuse {MountPoint}: opcode {opcode} on node {nodeId} failed (EIO): {e.Message}");
            length = -EIO;
        }
        if (length < 0)
        {
            WriteHeader(reply, OutHeaderSize, length, unique);
            _device.Write(reply.AsSpan(0, OutHeaderSize));
            return;
        }
        WriteHeader(reply, length, 0, unique);
        _device.Write(reply.AsSpan(0, length));
    }

    private static void WriteHeader(Span<byte> reply, int length, int error, ulong unique)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)length);
        BinaryPrimitives.WriteInt32LittleEndian(reply[4..], error);
        BinaryPrimitives.WriteUInt64LittleEndian(reply[8..], unique);
    }

    private static int Init(ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (body.Length < 16) return -EINVAL;
        uint major = BinaryPrimitives.ReadUInt32LittleEndian(body);
        uint maxReadahead = BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
        uint offered = BinaryPrimitives.ReadUInt32LittleEndian(body[12..]);
        var o = reply.Slice(OutHeaderSize, InitOutSize);
        o.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(o, KernelMajor);
        if (major < KernelMajor) return OutHeaderSize + 8;   // the kernel retries with our major
        BinaryPrimitives.WriteUInt32LittleEndian(o[4..], KernelMinor);
        BinaryPrimitives.WriteUInt32LittleEndian(o[8..], maxReadahead);
        uint wanted = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS;
        BinaryPrimitives.WriteUInt32LittleEndian(o[12..], wanted & offered);
        BinaryPrimitives.WriteUInt16LittleEndian(o[16..], 64);     // max_background
        BinaryPrimitives.WriteUInt16LittleEndian(o[18..], 48);     // congestion_threshold
        BinaryPrimitives.WriteUInt32LittleEndian(o[20..], 4096);   // max_write: read-only, never used
        BinaryPrimitives.WriteUInt32LittleEndian(o[24..], 1);      // time_gran: nanosecond timestamps
        BinaryPrimitives.WriteUInt16LittleEndian(o[28..], MaxPages);
        return OutHeaderSize + InitOutSize;
    }

    private ulong NidOf(ulong nodeId) => nodeId == RootId ? _image.RootNid : nodeId - 2;
    private ulong NodeIdOf(ulong nid) => nid == _image.RootNid ? RootId : nid + 2;

    private ErofsInode Inode(ulong nodeId)
    {
        ulong nid = NidOf(nodeId);
        if (_inodes.TryGetValue(nid, out var inode)) return inode;
        inode = _image.ReadInode(nid);
        if (_inodes.Count >= MaxCached) _inodes.Clear();
        _inodes[nid] = inode;
        return inode;
    }

    private DirEntry[] Entries(ErofsInode directory)
    {
        if (_directories.TryGetValue(directory.Nid, out var entries)) return entries;
        entries = [.. _image.ReadDirectory(directory)];
        if (_directories.Count >= MaxCached / 10) _directories.Clear();
        _directories[directory.Nid] = entries;
        return entries;
    }

    private int Lookup(ulong parent, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        int nul = body.IndexOf((byte)0);
        var name = nul >= 0 ? body[..nul] : body;
        var dir = Inode(parent);
        if (!dir.IsDirectory) return -ENOTDIR;
        var entries = Entries(dir);
        int lo = 0, hi = entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = DirectoryBlocks.CompareNames(entries[mid].Name, name);
            if (c == 0)
            {
                WriteEntry(reply[OutHeaderSize..], Inode(NodeIdOf(entries[mid].Nid)));
                return OutHeaderSize + EntryOutSize;
            }
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        // A negative entry the kernel may cache as long as a positive one: the image never gains names.
        var o = reply.Slice(OutHeaderSize, EntryOutSize);
        o.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(o[16..], ValidSeconds);
        return OutHeaderSize + EntryOutSize;
    }

    private void WriteEntry(Span<byte> o, ErofsInode inode)
    {
        o[..40].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(o, NodeIdOf(inode.Nid));
        BinaryPrimitives.WriteUInt64LittleEndian(o[16..], ValidSeconds);   // entry_valid
        BinaryPrimitives.WriteUInt64LittleEndian(o[24..], ValidSeconds);   // attr_valid
        WriteAttr(o[40..], inode);
    }

    private static void WriteAttr(Span<byte> a, ErofsInode inode)
    {
        a[..AttrSize].Clear();
        var d = inode.Disk;
        BinaryPrimitives.WriteUInt64LittleEndian(a, inode.Nid);
        BinaryPrimitives.WriteUInt64LittleEndian(a[8..], d.FileSize);
        BinaryPrimitives.WriteUInt64LittleEndian(a[16..], (d.FileSize + 511) / 512);
        foreach (int at in (ReadOnlySpan<int>)[24, 32, 40]) BinaryPrimitives.WriteInt64LittleEndian(a[at..], d.Mtime);   // EROFS keeps one time
        foreach (int at in (ReadOnlySpan<int>)[48, 52, 56]) BinaryPrimitives.WriteUInt32LittleEndian(a[at..], d.MtimeNsec);
        BinaryPrimitives.WriteUInt32LittleEndian(a[60..], (uint)d.Mode);
        BinaryPrimitives.WriteUInt32LittleEndian(a[64..], d.Nlink);
        BinaryPrimitives.WriteUInt32LittleEndian(a[68..], d.Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(a[72..], d.Gid);
        BinaryPrimitives.WriteUInt32LittleEndian(a[76..], inode.IsDevice ? d.U : 0);   // new_encode_dev, as on disk
        BinaryPrimitives.WriteUInt32LittleEndian(a[80..], ErofsFormat.BlockSize);
    }

    private int GetAttr(ulong nodeId, Span<byte> reply)
    {
        var o = reply.Slice(OutHeaderSize, AttrOutSize);
        o[..16].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(o, ValidSeconds);
        WriteAttr(o[16..], Inode(nodeId));
        return OutHeaderSize + AttrOutSize;
    }

    private int ReadLink(ulong nodeId, Span<byte> reply)
    {
        var inode = Inode(nodeId);
        if (!inode.IsSymlink) return -EINVAL;
        var target = _image.ReadSymlink(inode);
        target.CopyTo(reply[OutHeaderSize..]);
        return OutHeaderSize + target.Length;
    }

    private int Open(ulong nodeId, ReadOnlySpan<byte> body, Span<byte> reply, uint openFlags, bool directory)
    {
        var inode = Inode(nodeId);
        if (directory && !inode.IsDirectory) return -ENOTDIR;
        if (!directory && inode.IsDirectory) return -EISDIR;
        if (body.Length >= 4 && (BinaryPrimitives.ReadUInt32LittleEndian(body) & 3) != 0) return -EROFS;   // O_WRONLY/O_RDWR
        var o = reply.Slice(OutHeaderSize, OpenOutSize);
        o.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(o[8..], openFlags);
        return OutHeaderSize + OpenOutSize;
    }

    private int Read(ulong nodeId, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (body.Length < 24) return -EINVAL;
        long offset = BinaryPrimitives.ReadInt64LittleEndian(body[8..]);
        int size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body[16..]), (uint)(reply.Length - OutHeaderSize));
        var inode = Inode(nodeId);
        if (!inode.IsRegular) return -EINVAL;
        if (offset < 0) return -EINVAL;
        int n = _image.ReadData(inode, offset, reply.Slice(OutHeaderSize, size));
        return OutHeaderSize + n;
    }

    /// <summary>READDIR(PLUS): entries from the directory's index <c>offset</c>; each entry's cookie is the next index.</summary>
    private int ReadDirectory(ulong nodeId, ReadOnlySpan<byte> body, Span<byte> reply, bool plus)
    {
        if (body.Length < 24) return -EINVAL;
        long start = BinaryPrimitives.ReadInt64LittleEndian(body[8..]);
        int size = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body[16..]), (uint)(reply.Length - OutHeaderSize));
        var dir = Inode(nodeId);
        if (!dir.IsDirectory) return -ENOTDIR;
        var entries = Entries(dir);
        var o = reply.Slice(OutHeaderSize, size);
        int used = 0;
        for (long i = Math.Max(0, start); i < entries.Length; i++)
        {
            var e = entries[i];
            int direntSize = DirentHeaderSize + e.Name.Length;
            int recordSize = ((plus ? EntryOutSize : 0) + direntSize + 7) & ~7;
            if (used + recordSize > o.Length) break;
            var r = o.Slice(used, recordSize);
            r.Clear();
            bool dots = e.Name is [(byte)'.'] or [(byte)'.', (byte)'.'];
            if (plus)
            {
                // "." and ".." carry no entry (nodeid 0): the kernel skips them, and counts no lookup it would forget.
                if (!dots) WriteEntry(r, Inode(NodeIdOf(e.Nid)));
                r = r[EntryOutSize..];
            }
            BinaryPrimitives.WriteUInt64LittleEndian(r, e.Nid);
            BinaryPrimitives.WriteInt64LittleEndian(r[8..], i + 1);
            BinaryPrimitives.WriteUInt32LittleEndian(r[16..], (uint)e.Name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(r[20..], DirentType(e.FileType));
            e.Name.CopyTo(r[DirentHeaderSize..]);
            used += recordSize;
        }
        return OutHeaderSize + used;
    }

    private static uint DirentType(ErofsFileType type) => type switch
    {
        ErofsFileType.RegularFile => 8,
        ErofsFileType.Directory => 4,
        ErofsFileType.CharDevice => 2,
        ErofsFileType.BlockDevice => 6,
        ErofsFileType.Fifo => 1,
        ErofsFileType.Socket => 12,
        ErofsFileType.Symlink => 10,
        _ => 0,
    };

    /// <summary>
    /// What the kernel's erofs_statfs reports (6.x): all blocks of the image and its devices, none free; inode counts
    /// as "unlimited total, all but the image's inodes free".
    /// </summary>
    private int StatFs(Span<byte> reply)
    {
        var o = reply.Slice(OutHeaderSize, StatfsOutSize);
        o.Clear();
        ulong blocks = _image.SuperBlock.Blocks;
        foreach (var device in _image.Devices) blocks += device.Blocks;
        BinaryPrimitives.WriteUInt64LittleEndian(o, blocks);
        BinaryPrimitives.WriteUInt64LittleEndian(o[24..], ulong.MaxValue);
        BinaryPrimitives.WriteUInt64LittleEndian(o[32..], ulong.MaxValue - _image.SuperBlock.Inodes);
        BinaryPrimitives.WriteUInt32LittleEndian(o[40..], ErofsFormat.BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(o[44..], ErofsFormat.NameMaxLength);
        BinaryPrimitives.WriteUInt32LittleEndian(o[48..], ErofsFormat.BlockSize);
        return OutHeaderSize + StatfsOutSize;
    }

    private int GetXattr(ulong nodeId, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (body.Length < 9) return -EINVAL;
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(body);
        var nameBytes = body[8..];
        int nul = nameBytes.IndexOf((byte)0);
        string name = Encoding.UTF8.GetString(nul >= 0 ? nameBytes[..nul] : nameBytes);
        foreach (var (key, value) in _image.ReadXattrs(Inode(nodeId)))
        {
            if (key != name) continue;
            return SizedReply(reply, size, value);
        }
        return -ENODATA;
    }

    private int ListXattr(ulong nodeId, ReadOnlySpan<byte> body, Span<byte> reply)
    {
        if (body.Length < 4) return -EINVAL;
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(body);
        var names = new List<byte>();
        foreach (var (key, _) in _image.ReadXattrs(Inode(nodeId)))
        {
            names.AddRange(Encoding.UTF8.GetBytes(key));
            names.Add(0);
        }
        return SizedReply(reply, size, names.ToArray());
    }

    /// <summary>xattr replies: the length alone when asked with size 0, ERANGE when the caller's buffer is short.</summary>
    private static int SizedReply(Span<byte> reply, uint size, byte[] value)
    {
        if (size == 0)
        {
            var o = reply.Slice(OutHeaderSize, XattrSizeOutSize);
            o.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(o, (uint)value.Length);
            return OutHeaderSize + XattrSizeOutSize;
        }
        if (value.Length > size) return -ERANGE;
        value.CopyTo(reply[OutHeaderSize..]);
        return OutHeaderSize + value.Length;
    }

    /// <summary>Unmounts (lazily when busy), stops the threads and closes the device: open files then fail, never hang.</summary>
    public void Dispose()
    {
        Mounts.UnmountOrDetach(MountPoint);
        _threads.Stop();
        _device.Dispose();
        _image.Dispose();
    }
}
