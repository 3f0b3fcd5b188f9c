using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Rafs.Format;

namespace Rafs.Build.Layers;

/// <summary>
/// Merges OCI layer tars, in order, into one tree with overlay semantics (whiteouts delete lower entries, opaque
/// markers hide a lower directory's contents). File data is chunked into the layer's own blob as it streams
/// past, so nothing is spooled and a layer only stores chunks that no earlier layer stored.
/// </summary>
internal sealed class LayerImporter
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    private sealed class Entry(BuildNode node, int layer)
    {
        public BuildNode Node { get; set; } = node;
        public int Layer { get; set; } = layer;
        public Dictionary<string, Entry>? Children { get; set; }
    }

    private readonly Entry _root = new(NewDirectory("/", 0x1ED, 0, 0, 0, 0, []), -1) { Children = new(StringComparer.Ordinal) };
    private readonly int _chunkBits;
    private byte[] _buffer = [];

    public LayerImporter(int chunkBits) => _chunkBits = chunkBits;

    /// <summary>Opens a layer file, detecting gzip or zstd compression by its magic bytes.</summary>
    public static Stream OpenLayer(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        Span<byte> magic = stackalloc byte[4];
        int n = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        file.Position = 0;
        if (n >= 2 && magic[0] == 0x1F && magic[1] == 0x8B) return new GZipStream(file, CompressionMode.Decompress);
        if (n == 4 && magic.SequenceEqual(new byte[] { 0x28, 0xB5, 0x2F, 0xFD })) return new ZstdSharp.DecompressionStream(file);
        return file;
    }

    public void Import(string layerPath, int layer, ChunkStore chunks, IProgress<BuildProgress>? progress)
    {
        using var stream = new TarHeaderGuard(OpenLayer(layerPath));
        using var reader = new TarReader(stream);
        long entries = 0;
        while (true)
        {
            TarEntry? entry;
            try
            {
                entry = reader.GetNextEntry();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // TarReader reports bad archives with several exception types; all mean the same to the user.
                throw new InvalidDataException($"{layerPath}: damaged or truncated tar after {entries} entries ({e.Message}); fetch the layer again");
            }
            if (entry is null) break;
            entries++;
            try
            {
                Apply(entry, layer, chunks);
            }
            catch (EndOfStreamException)
            {
                throw new InvalidDataException($"{layerPath}: truncated in the data of '{entry.Name}'; fetch the layer again");
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{layerPath}: entry '{entry.Name}': {e.Message}");
            }
            progress?.Report(new BuildProgress($"layer {layer + 1}", entries, 0));
        }
    }

    private void Apply(TarEntry entry, int layer, ChunkStore chunks)
    {
        var parts = SplitPath(entry.Name);
        if (parts.Count == 0)
        {
            if (entry.EntryType == TarEntryType.Directory) _root.Node = FromEntry(entry, "/", null);
            return;
        }
        var name = parts[^1];
        var parent = EnsureDirectory(parts.Take(parts.Count - 1), layer, entry);
        if (name == OpaqueMarker)
        {
            var children = parent.Children!;
            foreach (var key in children.Where(kv => kv.Value.Layer < layer).Select(kv => kv.Key).ToList())
                children.Remove(key);
            return;
        }
        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            var target = name[WhiteoutPrefix.Length..];
            if (parent.Children!.TryGetValue(target, out var lower) && lower.Layer < layer) parent.Children.Remove(target);
            return;
        }
        string path = string.Join('/', parts);
        if (entry.EntryType == TarEntryType.HardLink)
        {
            var target = Lookup(SplitPath(entry.LinkName))
                ?? throw new InvalidDataException($"hard link to '{entry.LinkName}', which no earlier entry created");
            if (target.Node.IsDirectory) throw new InvalidDataException($"hard link to directory '{entry.LinkName}'");
            parent.Children![name] = new Entry(target.Node, layer);
            return;
        }
        var node = FromEntry(entry, path, chunks);
        if (parent.Children!.TryGetValue(name, out var existing) && existing.Node.IsDirectory && node.IsDirectory)
        {
            existing.Node = node;       // a directory entry over a directory: new metadata, contents merge
            existing.Layer = layer;
            return;
        }
        parent.Children[name] = new Entry(node, layer) { Children = node.IsDirectory ? new(StringComparer.Ordinal) : null };
    }

    /// <summary>Splits a tar path into components; absolute paths are taken relative to the root, ".." is refused.</summary>
    private static List<string> SplitPath(string name)
    {
        var parts = new List<string>();
        foreach (var part in name.Split('/'))
        {
            if (part.Length == 0 || part == ".") continue;
            if (part == "..") throw new InvalidDataException($"path '{name}' contains '..', which would escape the image root");
            if (Encoding.UTF8.GetByteCount(part) > ErofsFormat.NameMaxLength)
                throw new InvalidDataException($"path '{name}' has a component longer than {ErofsFormat.NameMaxLength} bytes");
            if (part.Contains('\0')) throw new InvalidDataException($"path '{name}' contains a NUL byte");
            parts.Add(part);
        }
        return parts;
    }

    private Entry? Lookup(List<string> parts)
    {
        var current = _root;
        foreach (var part in parts)
        {
            if (current.Children is null || !current.Children.TryGetValue(part, out var next)) return null;
            current = next;
        }
        return current;
    }

    /// <summary>Walks to a directory, creating missing ones; a symlink or file on the way is refused, so nothing escapes through it.</summary>
    private Entry EnsureDirectory(IEnumerable<string> parts, int layer, TarEntry entry)
    {
        var current = _root;
        foreach (var part in parts)
        {
            if (!current.Children!.TryGetValue(part, out var next))
            {
                next = new Entry(NewDirectory(part, 0x1ED, 0, 0, entry.ModificationTime.ToUnixTimeSeconds(), 0, []), layer) { Children = new(StringComparer.Ordinal) };
                current.Children[part] = next;
            }
            else if (!next.Node.IsDirectory)
            {
                throw new InvalidDataException($"'{part}' on the way is a {(next.Node.IsSymlink ? "symlink" : "non-directory")}; entries may not go through it");
            }
            current = next;
        }
        return current;
    }

    private BuildNode FromEntry(TarEntry entry, string path, ChunkStore? chunks)
    {
        int permissions = (int)entry.Mode & 0xFFF;
        var (seconds, nanoseconds) = MtimeOf(entry);
        var xattrs = XattrsOf(entry);
        uint uid = (uint)entry.Uid, gid = (uint)entry.Gid;
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                return NewDirectory(path, permissions, uid, gid, seconds, nanoseconds, xattrs);
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                var node = new BuildNode
                {
                    SourcePath = path, Mode = UnixMode.Regular | permissions, Uid = uid, Gid = gid,
                    MtimeSeconds = seconds, MtimeNanoseconds = nanoseconds, Size = entry.Length, Xattrs = xattrs,
                };
                if (entry.Length > 0) node.Data = ReadChunks(entry, chunks!);
                return node;
            case TarEntryType.SymbolicLink:
                var target = Encoding.UTF8.GetBytes(entry.LinkName);
                if (target.Length == 0 || target.Length > ErofsFormat.SymlinkMaxLength)
                    throw new InvalidDataException($"symlink target of {target.Length} bytes cannot be stored");
                return new BuildNode
                {
                    SourcePath = path, Mode = UnixMode.Symlink | 0x1FF, Uid = uid, Gid = gid, MtimeSeconds = seconds,
                    MtimeNanoseconds = nanoseconds, Size = target.Length, LinkTarget = target, Xattrs = xattrs,
                };
            case TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo:
                int type = entry.EntryType switch
                {
                    TarEntryType.CharacterDevice => UnixMode.CharDevice,
                    TarEntryType.BlockDevice => UnixMode.BlockDevice,
                    _ => UnixMode.Fifo,
                };
                bool device = type != UnixMode.Fifo;
                return new BuildNode
                {
                    SourcePath = path, Mode = type | permissions, Uid = uid, Gid = gid, MtimeSeconds = seconds,
                    MtimeNanoseconds = nanoseconds, RdevMajor = device && entry is PosixTarEntry p ? (uint)p.DeviceMajor : 0,
                    RdevMinor = device && entry is PosixTarEntry q ? (uint)q.DeviceMinor : 0, Xattrs = xattrs,
                };
            default:
                throw new InvalidDataException($"tar entry type {entry.EntryType} is not supported");
        }
    }

    private ChunkedData ReadChunks(TarEntry entry, ChunkStore chunks)
    {
        var data = entry.DataStream ?? throw new InvalidDataException("regular file without data");
        int chunkSize = 1 << _chunkBits;
        if (_buffer.Length < chunkSize) _buffer = new byte[chunkSize];
        long count = (entry.Length + chunkSize - 1) >> _chunkBits;
        var indexes = new Rafs.Format.ChunkIndex[count];
        for (long i = 0; i < count; i++)
        {
            int length = (int)Math.Min(chunkSize, entry.Length - (i << _chunkBits));
            data.ReadExactly(_buffer, 0, length);
            indexes[i] = chunks.Put(_buffer.AsSpan(0, length));
        }
        return new ChunkedData(_chunkBits, indexes);
    }

    /// <summary>PAX "mtime" keeps nanoseconds ("1700000000.123456789"); the other formats have whole seconds.</summary>
    private static (long Seconds, uint Nanoseconds) MtimeOf(TarEntry entry)
    {
        if (entry is PaxTarEntry pax && pax.ExtendedAttributes.TryGetValue("mtime", out var text))
        {
            var parts = text.Split('.');
            if (long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long s))
            {
                uint ns = 0;
                if (parts.Length > 1 && parts[1].Length > 0 && parts[1].All(char.IsAsciiDigit))
                    ns = uint.Parse(parts[1].PadRight(9, '0')[..9], CultureInfo.InvariantCulture);
                // "-1.5" means 1.5 s before the epoch: whole seconds down, nanoseconds up.
                if (text.StartsWith('-') && ns > 0) { s -= 1; ns = 1_000_000_000 - ns; }
                return (s, ns);
            }
        }
        return (entry.ModificationTime.ToUnixTimeSeconds(), 0);
    }

    /// <summary>xattrs from PAX records: SCHILY.xattr.NAME (GNU tar, docker) and LIBARCHIVE.xattr.NAME (base64 value).</summary>
    private static List<KeyValuePair<string, byte[]>> XattrsOf(TarEntry entry)
    {
        var result = new List<KeyValuePair<string, byte[]>>();
        if (entry is not PaxTarEntry pax) return result;
        foreach (var (key, value) in pax.ExtendedAttributes)
        {
            if (key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                result.Add(new(key["SCHILY.xattr.".Length..], Encoding.UTF8.GetBytes(value)));
            else if (key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal))
                result.Add(new(Uri.UnescapeDataString(key["LIBARCHIVE.xattr.".Length..]), Convert.FromBase64String(value)));
        }
        result.RemoveAll(x => !XattrPrefix.TrySplit(Encoding.UTF8.GetBytes(x.Key), out _, out _));
        result.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return result.DistinctBy(x => x.Key).ToList();
    }

    private static BuildNode NewDirectory(string path, int permissions, uint uid, uint gid, long seconds, uint nanoseconds,
        IReadOnlyList<KeyValuePair<string, byte[]>> xattrs) => new()
    {
        SourcePath = path, Mode = UnixMode.Directory | permissions, Uid = uid, Gid = gid,
        MtimeSeconds = seconds, MtimeNanoseconds = nanoseconds, Xattrs = xattrs,
    };

    /// <summary>The merged tree as the builder's input: sorted children, parents, link counts.</summary>
    public BuildTree ToTree()
    {
        long files = 0, bytes = 0;
        var counted = new HashSet<BuildNode>(ReferenceEqualityComparer.Instance);
        BuildNode Convert(Entry entry, BuildNode parent)
        {
            var node = entry.Node;
            if (!node.IsDirectory)
            {
                node.Links++;
                if (node.IsRegular && counted.Add(node)) { files++; bytes += node.Size; }
                return node;
            }
            node.Parent = parent;
            node.Children = entry.Children!
                .Select(kv => new BuildEntry(Encoding.UTF8.GetBytes(kv.Key), Convert(kv.Value, node)))
                .OrderBy(e => e.Name, Comparer<byte[]>.Create((a, b) => DirectoryBlocks.CompareNames(a, b)))
                .ToList();
            return node;
        }
        var root = _root.Node;
        Convert(_root, root);
        root.Parent = root;
        return new BuildTree(root) { FileCount = files, DataBytes = bytes };
    }
}
