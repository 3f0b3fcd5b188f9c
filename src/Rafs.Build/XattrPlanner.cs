using System.Text;
using Rafs.Format;

namespace Rafs.Build;

/// <summary>
/// Decides which xattrs go to the shared area (those carried by two or more inodes) and encodes each inode's
/// xattr body: the ibody header, its shared ids, then its own entries.
/// </summary>
internal sealed class XattrPlanner
{
    /// <summary>EROFS keeps at most 255 shared ids per inode (h_shared_count is a byte).</summary>
    private const int MaxSharedPerInode = byte.MaxValue;

    /// <summary>i_xattr_icount is 16 bits: a 12-byte header plus up to 65534 more 4-byte words.</summary>
    private const int MaxBodySize = XattrIbodyHeader.Size + 4 * (ushort.MaxValue - 1);

    private readonly Dictionary<string, uint> _sharedIds = new(StringComparer.Ordinal);
    private readonly MemoryStream _sharedArea = new();

    public ReadOnlySpan<byte> SharedArea => _sharedArea.GetBuffer().AsSpan(0, (int)_sharedArea.Length);
    public bool HasShared => _sharedArea.Length > 0;

    public XattrPlanner(IReadOnlyList<BuildNode> inodes)
    {
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in inodes)
            foreach (var x in node.Xattrs)
            {
                var key = Key(x);
                uses[key] = uses.GetValueOrDefault(key) + 1;
            }
        // Ids are assigned in first-use order so the area depends only on the tree.
        foreach (var node in inodes)
            foreach (var x in node.Xattrs)
            {
                var key = Key(x);
                if (uses[key] < 2 || _sharedIds.ContainsKey(key)) continue;
                _sharedIds[key] = checked((uint)(_sharedArea.Length / 4));
                _sharedArea.Write(EncodeEntry(x));
            }
        foreach (var node in inodes)
            node.XattrBody = EncodeBody(node.Xattrs);
    }

    private byte[] EncodeBody(IReadOnlyList<KeyValuePair<string, byte[]>> xattrs)
    {
        if (xattrs.Count == 0) return [];
        var shared = new List<uint>();
        var inline = new MemoryStream();
        foreach (var x in xattrs)
        {
            if (shared.Count < MaxSharedPerInode && _sharedIds.TryGetValue(Key(x), out uint id)) shared.Add(id);
            else inline.Write(EncodeEntry(x));
        }
        var body = new byte[XattrIbodyHeader.Size + 4 * shared.Count + inline.Length];
        new XattrIbodyHeader(0, (byte)shared.Count).Write(body);
        for (int i = 0; i < shared.Count; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(XattrIbodyHeader.Size + 4 * i), shared[i]);
        inline.GetBuffer().AsSpan(0, (int)inline.Length).CopyTo(body.AsSpan(XattrIbodyHeader.Size + 4 * shared.Count));
        if (body.Length > MaxBodySize)
            throw new InvalidDataException($"xattrs of {body.Length} bytes exceed the {MaxBodySize} bytes an EROFS inode can carry");
        return body;
    }

    private static string Key(KeyValuePair<string, byte[]> x) => x.Key + "\0" + Convert.ToBase64String(x.Value);

    private static byte[] EncodeEntry(KeyValuePair<string, byte[]> x)
    {
        var name = Encoding.UTF8.GetBytes(x.Key);
        if (!XattrPrefix.TrySplit(name, out byte index, out int prefixLength))
            throw new InvalidOperationException($"xattr {x.Key} has no EROFS prefix");
        var suffix = name.AsSpan(prefixLength);
        var entry = new byte[XattrEntryHeader.AlignedSize(suffix.Length, x.Value.Length)];
        new XattrEntryHeader((byte)suffix.Length, index, (ushort)x.Value.Length).Write(entry);
        suffix.CopyTo(entry.AsSpan(XattrEntryHeader.Size));
        x.Value.CopyTo(entry.AsSpan(XattrEntryHeader.Size + suffix.Length));
        return entry;
    }
}
