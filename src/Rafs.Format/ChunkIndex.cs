using System.Buffers.Binary;

namespace Rafs.Format;

/// <summary>struct erofs_inode_chunk_index (8 bytes): where one chunk of a chunk-based file lives.</summary>
public readonly record struct ChunkIndex(ushort Advise, ushort DeviceId, uint BlockAddress)
{
    public const int Size = 8;

    public bool IsHole => BlockAddress == ErofsFormat.NullAddress;
    public static ChunkIndex Hole => new(0, 0, ErofsFormat.NullAddress);

    public static ChunkIndex Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt16LittleEndian(b),
        BinaryPrimitives.ReadUInt16LittleEndian(b[2..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]));

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(b, Advise);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], DeviceId);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], BlockAddress);
    }
}

/// <summary>erofs_inode_chunk_info: the i_u summary of a chunk-based inode.</summary>
public readonly record struct ChunkInfo(ushort Format)
{
    public int ChunkBlockBits => Format & ErofsFormat.ChunkFormatBlkBitsMask;
    public bool HasIndexes => (Format & ErofsFormat.ChunkFormatIndexes) != 0;
    public int ChunkSizeBits => ErofsFormat.BlockSizeBits + ChunkBlockBits;
    public int IndexEntrySize => HasIndexes ? ChunkIndex.Size : ErofsFormat.BlockMapEntrySize;

    public static ChunkInfo ForChunkSizeBits(int chunkSizeBits, bool indexes) =>
        new((ushort)((chunkSizeBits - ErofsFormat.BlockSizeBits) | (indexes ? ErofsFormat.ChunkFormatIndexes : 0)));
}
