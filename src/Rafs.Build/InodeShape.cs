using Rafs.Format;

namespace Rafs.Build;

/// <summary>The on-disk form an inode gets: decided once, used by the data and metadata writers alike.</summary>
internal static class InodeShape
{
    public static bool NeedsExtended(BuildNode node, long buildTime) =>
        node.Uid > ushort.MaxValue || node.Gid > ushort.MaxValue || node.Nlink > ushort.MaxValue ||
        node.Size > uint.MaxValue || node.MtimeSeconds != buildTime || node.MtimeNanoseconds != 0;

    public static int CoreSize(BuildNode node, long buildTime) =>
        NeedsExtended(node, buildTime) ? InodeExtended.Size : InodeCompact.Size;

    /// <summary>Inline tail data must sit in the same block as the inode core and xattrs that precede it.</summary>
    public static bool TailFitsInline(BuildNode node, long buildTime, long tailLength) =>
        tailLength > 0 && CoreSize(node, buildTime) + node.XattrBody.Length + tailLength <= ErofsFormat.BlockSize;
}
