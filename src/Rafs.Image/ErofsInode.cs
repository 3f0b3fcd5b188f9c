using Rafs.Format;

namespace Rafs.Image;

/// <summary>An inode as read and validated from an image: its nid, where it sits, and the decoded fields.</summary>
public sealed record ErofsInode(ulong Nid, long Offset, DiskInode Disk)
{
    public int Mode => Disk.Mode;
    public int Type => Disk.Mode & UnixMode.TypeMask;
    public long Size => (long)Disk.FileSize;
    public bool IsDirectory => Type == UnixMode.Directory;
    public bool IsRegular => Type == UnixMode.Regular;
    public bool IsSymlink => Type == UnixMode.Symlink;
    public bool IsDevice => Type is UnixMode.CharDevice or UnixMode.BlockDevice;
    public InodeDataLayout Layout => Disk.Layout;
    public long XattrOffset => Offset + Disk.CoreSize;
    /// <summary>Where inline data (a tail or chunk indexes) begins: right after the core and the xattr body.</summary>
    public long InlineOffset => XattrOffset + Disk.XattrBodySize;
    public uint RawBlockAddress => Disk.U;
    public uint RdevMajor => DeviceNumber.Major(Disk.U);
    public uint RdevMinor => DeviceNumber.Minor(Disk.U);
    public long Blocks => (Size + ErofsFormat.BlockSize - 1) >> ErofsFormat.BlockSizeBits;
}

/// <summary>One mapped piece of a file: logical range → device (0 = the image) and physical offset, or a hole.</summary>
public readonly record struct FileExtent(long Logical, long Length, int Device, long Physical, bool IsHole);
