using Rafs.Format;

namespace Rafs.Tests.Format;

public class FormatTests
{
    [Fact]
    public void StructSizesMatchTheKernel()
    {
        // BUILD_BUG_ON values from fs/erofs/erofs_fs.h
        Assert.Equal(128, SuperBlock.Size);
        Assert.Equal(32, InodeCompact.Size);
        Assert.Equal(64, InodeExtended.Size);
        Assert.Equal(12, XattrIbodyHeader.Size);
        Assert.Equal(4, XattrEntryHeader.Size);
        Assert.Equal(8, ChunkIndex.Size);
        Assert.Equal(12, Dirent.Size);
        Assert.Equal(128, DeviceSlot.Size);
    }

    [Fact]
    public void SuperBlockRoundTripsAndChecksumCoversTheBlockTail()
    {
        var sb = new SuperBlock
        {
            FeatureCompat = ErofsFormat.FeatureCompatSbChecksum,
            RootNid = 128, Inodes = 42, BuildTime = 1700000000, Blocks = 9, MetaBlockAddress = 1,
            Uuid = Guid.Parse("01234567-89ab-cdef-0123-456789abcdef"), VolumeName = "vol",
            FeatureIncompat = ErofsFormat.FeatureIncompatChunkedFile, ExtraDevices = 1, DeviceTableSlotOffset = 9,
        };
        var block = new byte[ErofsFormat.BlockSize];
        sb.Write(block.AsSpan(ErofsFormat.SuperOffset));
        var back = SuperBlock.Read(block.AsSpan(ErofsFormat.SuperOffset));
        Assert.Equal(sb, back);
        // uuid bytes are stored in the textual order
        Assert.Equal(0x01, block[ErofsFormat.SuperOffset + 48]);
        uint crc = SuperBlock.ComputeChecksum(block.AsSpan(ErofsFormat.SuperOffset, SuperBlock.ChecksumLength));
        block[4000] ^= 1;
        Assert.NotEqual(crc, SuperBlock.ComputeChecksum(block.AsSpan(ErofsFormat.SuperOffset, SuperBlock.ChecksumLength)));
    }

    [Fact]
    public void Crc32CMatchesTheStandardCheckValue()
    {
        // CRC-32C("123456789") = 0xE3069283 with the usual final inversion; the kernel form omits it.
        Assert.Equal(0xE3069283u, ~Crc32C.Compute(~0u, "123456789"u8));
    }

    [Fact]
    public void ExtendedInodeRoundTripsNegativeAndFarFutureTimes()
    {
        foreach (long t in new[] { -1234567890L, 0L, 4102444800L })
        {
            var inode = new DiskInode(true, InodeDataLayout.ChunkBased, 5, 0x81ED, 70000, 5L << 30, 0x24, 7, 4000000000, 70001, t, 123456789);
            var buffer = new byte[64];
            inode.Write(buffer);
            Assert.Equal(inode, DiskInode.Read(buffer, 0, 0));
        }
    }

    [Fact]
    public void CompactInodeTakesItsTimeFromTheSuperblock()
    {
        var inode = new DiskInode(false, InodeDataLayout.FlatInline, 0, 0x41ED, 2, 100, 0, 1, 0, 0, 1700000000, 0);
        var buffer = new byte[32];
        inode.Write(buffer);
        Assert.Equal(inode, DiskInode.Read(buffer, 1700000000, 0));
        Assert.True(inode.FitsCompact(1700000000, 0));
        Assert.False((inode with { Mtime = 1700000001 }).FitsCompact(1700000000, 0));
    }

    [Fact]
    public void DeviceNumbersUseTheKernelsNewEncoding()
    {
        uint encoded = DeviceNumber.Encode(259, 300000);
        Assert.Equal(259u, DeviceNumber.Major(encoded));
        Assert.Equal(300000u, DeviceNumber.Minor(encoded));
        Assert.Equal((1u << 8) | 3u, DeviceNumber.Encode(1, 3));
    }

    [Fact]
    public void DirectoryBlocksSplitAtBlockBoundariesAndDecodeBack()
    {
        var entries = Enumerable.Range(0, 700)
            .Select(i => new DirEntry(System.Text.Encoding.UTF8.GetBytes($"file-{i:D5}-{new string('x', i % 40)}"), (ulong)(100 + i), ErofsFileType.RegularFile))
            .OrderBy(e => e.Name, Comparer<byte[]>.Create((a, b) => DirectoryBlocks.CompareNames(a, b)))
            .ToList();
        var counts = DirectoryBlocks.Plan(entries, out long size);
        Assert.True(counts.Count > 3);
        var decoded = new List<DirEntry>();
        int first = 0;
        for (int b = 0; b < counts.Count; b++)
        {
            var block = new byte[ErofsFormat.BlockSize];
            int used = DirectoryBlocks.EncodeBlock(entries, first, counts[b], block);
            int valid = (int)Math.Min(ErofsFormat.BlockSize, size - (long)b * ErofsFormat.BlockSize);
            Assert.True(used <= valid);
            decoded.AddRange(DirectoryBlocks.DecodeBlock(block.AsSpan(0, valid), "test"));
            first += counts[b];
        }
        Assert.Equal(entries.Select(e => (e.NameString, e.Nid)), decoded.Select(e => (e.NameString, e.Nid)));
    }

    [Fact]
    public void XattrPrefixesSplitLikeTheKernel()
    {
        Assert.True(XattrPrefix.TrySplit("user.mime"u8, out byte i, out int n));
        Assert.Equal((XattrPrefix.User, 5), (i, n));
        Assert.True(XattrPrefix.TrySplit("system.posix_acl_access"u8, out i, out n));
        Assert.Equal(XattrPrefix.PosixAclAccess, i);
        Assert.False(XattrPrefix.TrySplit("system.posix_acl_accessx"u8, out _, out _));
        Assert.False(XattrPrefix.TrySplit("system.nfs4_acl"u8, out _, out _));
        Assert.Equal("security.capability", XattrPrefix.FullName(XattrPrefix.Security, "capability"u8));
    }
}
