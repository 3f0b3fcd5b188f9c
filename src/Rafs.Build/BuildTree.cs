using Rafs.Format;

namespace Rafs.Build;

/// <summary>One name in a directory. Hard links are several entries pointing at the same <see cref="BuildNode"/>.</summary>
public readonly record struct BuildEntry(byte[] Name, BuildNode Node);

/// <summary>
/// Metadata of one inode of the tree being built. Data is not held here: it is streamed from
/// <see cref="SourcePath"/> when the data area is written.
/// </summary>
public sealed class BuildNode
{
    public required string SourcePath { get; init; }
    public required int Mode { get; init; }
    public uint Uid { get; init; }
    public uint Gid { get; init; }
    public long MtimeSeconds { get; init; }
    public uint MtimeNanoseconds { get; init; }
    public long Size { get; init; }
    public uint RdevMajor { get; init; }
    public uint RdevMinor { get; init; }
    public byte[]? LinkTarget { get; init; }
    public IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs { get; init; } = [];

    /// <summary>Children of a directory, sorted by name bytes.</summary>
    public List<BuildEntry>? Children { get; set; }
    /// <summary>For directories: the parent directory (the root's parent is itself).</summary>
    public BuildNode? Parent { get; set; }
    /// <summary>Number of directory entries naming this inode (for non-directories).</summary>
    public uint Links { get; set; }

    public bool IsDirectory => (Mode & UnixMode.TypeMask) == UnixMode.Directory;
    public bool IsRegular => (Mode & UnixMode.TypeMask) == UnixMode.Regular;
    public bool IsSymlink => (Mode & UnixMode.TypeMask) == UnixMode.Symlink;

    public uint Nlink => IsDirectory ? 2u + (uint)(Children?.Count(c => c.Node.IsDirectory) ?? 0) : Links;

    // Decided while building:
    internal FileData? Data { get; set; }
    internal ulong Nid { get; set; }
    internal byte[] XattrBody { get; set; } = [];
}

/// <summary>Where a regular file's data ended up.</summary>
internal abstract record FileData;

/// <summary>Contiguous blocks in the image; the partial last block either inline after the inode or in the blocks.</summary>
internal sealed record FlatData(uint BlockAddress, long FullBlocks, bool InlineTail, long TailSpillOffset, int TailLength) : FileData;

/// <summary>A chunk-based file: one index per chunk (holes are <see cref="ChunkIndex.Hole"/>).</summary>
internal sealed record ChunkedData(int ChunkSizeBits, ChunkIndex[] Indexes) : FileData;

/// <summary>The source tree: the root directory node plus totals gathered by the scan.</summary>
public sealed class BuildTree(BuildNode root)
{
    public BuildNode Root { get; } = root;
    public long FileCount { get; init; }
    public long DataBytes { get; init; }

    /// <summary>
    /// Inodes in the order Rafs lays them out: breadth-first, children by name, a hard-linked inode at its first name.
    /// Directory contents stay together, and the order depends only on the tree.
    /// </summary>
    public List<BuildNode> InodeOrder()
    {
        var order = new List<BuildNode> { Root };
        var seen = new HashSet<BuildNode>(ReferenceEqualityComparer.Instance) { Root };
        for (int i = 0; i < order.Count; i++)
        {
            var dir = order[i];
            if (dir.Children is null) continue;
            foreach (var child in dir.Children)
                if (seen.Add(child.Node)) order.Add(child.Node);
        }
        return order;
    }
}
