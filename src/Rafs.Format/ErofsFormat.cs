namespace Rafs.Format;

/// <summary>
/// Constants of the EROFS on-disk format, named after the kernel's fs/erofs/erofs_fs.h.
/// This project is the single place that knows the layout; everything else goes through it.
/// </summary>
public static class ErofsFormat
{
    public const uint SuperMagic = 0xE0F5E1E2;
    /// <summary>The superblock sits 1 KiB into block 0 (room for x86 boot sectors).</summary>
    public const int SuperOffset = 1024;
    public const int BlockSizeBits = 12;
    public const int BlockSize = 1 << BlockSizeBits;
    /// <summary>Inodes are addressed in 32-byte slots: offset = meta_blkaddr * block size + nid * 32.</summary>
    public const int InodeSlotBits = 5;
    public const int InodeSlotSize = 1 << InodeSlotBits;
    public const int NameMaxLength = 255;
    /// <summary>Linux PATH_MAX - 1: the longest symlink target the VFS accepts.</summary>
    public const int SymlinkMaxLength = 4095;
    /// <summary>Chunk index / block map value meaning "hole: reads as zeros".</summary>
    public const uint NullAddress = 0xFFFFFFFF;

    public const uint FeatureCompatSbChecksum = 0x1;
    public const uint FeatureCompatMtime = 0x2;
    public const uint FeatureCompatXattrFilter = 0x4;

    public const uint FeatureIncompatZeroPadding = 0x1;
    public const uint FeatureIncompatComprCfgs = 0x2;
    public const uint FeatureIncompatChunkedFile = 0x4;
    public const uint FeatureIncompatDeviceTable = 0x8;
    public const uint FeatureIncompatZtailpacking = 0x10;
    public const uint FeatureIncompatFragments = 0x20;
    public const uint FeatureIncompatXattrPrefixes = 0x40;

    /// <summary>Incompatible features this reader understands (uncompressed images only).</summary>
    public const uint SupportedIncompat = FeatureIncompatZeroPadding | FeatureIncompatChunkedFile | FeatureIncompatDeviceTable;

    public const int ChunkFormatBlkBitsMask = 0x001F;
    public const int ChunkFormatIndexes = 0x0020;
    public const int ChunkFormatAll = ChunkFormatBlkBitsMask | ChunkFormatIndexes;
    public const int BlockMapEntrySize = 4;

    /// <summary>Smallest and largest chunk size Rafs builds with.</summary>
    public const int MinChunkSizeBits = 12;
    public const int MaxChunkSizeBits = 24;

    public static string FeatureNames(uint compat, uint incompat)
    {
        var names = new List<string>();
        if ((compat & FeatureCompatSbChecksum) != 0) names.Add("sb_csum");
        if ((compat & FeatureCompatMtime) != 0) names.Add("mtime");
        if ((compat & FeatureCompatXattrFilter) != 0) names.Add("xattr_filter");
        if ((incompat & FeatureIncompatZeroPadding) != 0) names.Add("0padding");
        if ((incompat & FeatureIncompatComprCfgs) != 0) names.Add("compr_cfgs/big_pcluster");
        if ((incompat & FeatureIncompatChunkedFile) != 0) names.Add("chunked_file");
        if ((incompat & FeatureIncompatDeviceTable) != 0) names.Add("device_table");
        if ((incompat & FeatureIncompatZtailpacking) != 0) names.Add("ztailpacking");
        if ((incompat & FeatureIncompatFragments) != 0) names.Add("fragments/dedupe");
        if ((incompat & FeatureIncompatXattrPrefixes) != 0) names.Add("xattr_prefixes");
        uint unknownCompat = compat & ~(FeatureCompatSbChecksum | FeatureCompatMtime | FeatureCompatXattrFilter);
        uint unknownIncompat = incompat & ~0x7Fu;
        if (unknownCompat != 0) names.Add($"compat:0x{unknownCompat:x}");
        if (unknownIncompat != 0) names.Add($"incompat:0x{unknownIncompat:x}");
        return string.Join(' ', names);
    }
}

/// <summary>i_format data layouts (bits 1..3).</summary>
public enum InodeDataLayout : byte
{
    FlatPlain = 0,
    CompressedFull = 1,
    FlatInline = 2,
    CompressedCompact = 3,
    ChunkBased = 4,
}

/// <summary>File types stored in dirents (the generic FT_* values).</summary>
public enum ErofsFileType : byte
{
    Unknown = 0,
    RegularFile = 1,
    Directory = 2,
    CharDevice = 3,
    BlockDevice = 4,
    Fifo = 5,
    Socket = 6,
    Symlink = 7,
}

/// <summary>POSIX file mode bits, as stored in i_mode.</summary>
public static class UnixMode
{
    public const int TypeMask = 0xF000;
    public const int Socket = 0xC000;
    public const int Symlink = 0xA000;
    public const int Regular = 0x8000;
    public const int BlockDevice = 0x6000;
    public const int Directory = 0x4000;
    public const int CharDevice = 0x2000;
    public const int Fifo = 0x1000;
    public const int PermissionMask = 0xFFF; // incl. setuid, setgid, sticky

    public static ErofsFileType ToFileType(int mode) => (mode & TypeMask) switch
    {
        Regular => ErofsFileType.RegularFile,
        Directory => ErofsFileType.Directory,
        CharDevice => ErofsFileType.CharDevice,
        BlockDevice => ErofsFileType.BlockDevice,
        Fifo => ErofsFileType.Fifo,
        Socket => ErofsFileType.Socket,
        Symlink => ErofsFileType.Symlink,
        _ => ErofsFileType.Unknown,
    };

    public static bool IsValidType(int mode) => ToFileType(mode) != ErofsFileType.Unknown;

    /// <summary>ls-style type letter.</summary>
    public static char TypeChar(int mode) => (mode & TypeMask) switch
    {
        Directory => 'd', Symlink => 'l', CharDevice => 'c', BlockDevice => 'b', Fifo => 'p', Socket => 's', _ => '-',
    };
}

/// <summary>The kernel's new_encode_dev/new_decode_dev: the 32-bit rdev stored in i_u.</summary>
public static class DeviceNumber
{
    public static uint Encode(uint major, uint minor) => (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
    public static uint Major(uint encoded) => (encoded & 0xfff00) >> 8;
    public static uint Minor(uint encoded) => (encoded & 0xff) | ((encoded >> 12) & 0xfff00);
}
