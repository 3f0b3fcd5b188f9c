using System.Buffers.Binary;

namespace Rafs.Storage;

/// <summary>How one chunk is stored in a blob.</summary>
public enum ChunkCompression : byte
{
    None = 0,
    Zstd = 1,
    Lz4 = 2,
}

/// <summary>
/// One chunk table entry (64 bytes): where the chunk is in the stored blob, where it goes in the uncompressed
/// device layout (the EROFS extra device the bootstrap's chunk indexes point into), and its sha256.
/// </summary>
public readonly record struct BlobChunkEntry(long StoredOffset, int StoredSize, long DeviceOffset, int Size,
    ChunkCompression Compression, byte[] Digest)
{
    public const int EntrySize = 64;

    public static BlobChunkEntry Read(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadInt64LittleEndian(b),
        BinaryPrimitives.ReadInt32LittleEndian(b[8..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[12..]),
        BinaryPrimitives.ReadInt32LittleEndian(b[20..]),
        (ChunkCompression)b[24],
        b.Slice(32, 32).ToArray());

    public void Write(Span<byte> b)
    {
        b[..EntrySize].Clear();
        BinaryPrimitives.WriteInt64LittleEndian(b, StoredOffset);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], StoredSize);
        BinaryPrimitives.WriteInt64LittleEndian(b[12..], DeviceOffset);
        BinaryPrimitives.WriteInt32LittleEndian(b[20..], Size);
        b[24] = (byte)Compression;
        Digest.CopyTo(b[32..]);
    }
}

/// <summary>
/// The blob footer (64 bytes, the last bytes of every stored blob): format version, where the chunk table is,
/// its sha256, and the size of the device layout the chunks materialise into. A reader fetches the footer, then
/// the table: two range reads.
/// </summary>
public readonly record struct BlobFooter(int Version, int ChunkCount, long TableOffset, long DeviceSize, byte[] TableDigest)
{
    public const int FooterSize = 64;
    public const int CurrentVersion = 1;
    public static ReadOnlySpan<byte> Magic => "RAFSBLOB"u8;

    public long TableSize => (long)ChunkCount * BlobChunkEntry.EntrySize;

    public static BlobFooter Read(ReadOnlySpan<byte> b, string where)
    {
        if (b.Length < FooterSize || !b[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"{where}: no Rafs blob footer (is this a blob made by rafs build?)");
        int version = BinaryPrimitives.ReadInt32LittleEndian(b[8..]);
        if (version != CurrentVersion)
            throw new InvalidDataException($"{where}: blob format version {version} is not supported (this rafs reads {CurrentVersion}); upgrade rafs");
        var footer = new BlobFooter(version,
            BinaryPrimitives.ReadInt32LittleEndian(b[12..]),
            BinaryPrimitives.ReadInt64LittleEndian(b[16..]),
            BinaryPrimitives.ReadInt64LittleEndian(b[24..]),
            b.Slice(32, 32).ToArray());
        if (footer.ChunkCount < 0 || footer.TableOffset < 0 || footer.DeviceSize < 0 || footer.DeviceSize % Rafs.Format.ErofsFormat.BlockSize != 0)
            throw new InvalidDataException($"{where}: blob footer has impossible values");
        return footer;
    }

    public void Write(Span<byte> b)
    {
        b[..FooterSize].Clear();
        Magic.CopyTo(b);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], ChunkCount);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], TableOffset);
        BinaryPrimitives.WriteInt64LittleEndian(b[24..], DeviceSize);
        TableDigest.CopyTo(b[32..]);
    }
}

/// <summary>
/// Chunk codecs. Each chunk is compressed on its own so any one can be fetched and decoded alone. zstd goes through
/// Debian's libzstd (fastest in bench/compressors.sh); lz4 through K4os.
/// </summary>
public static class ChunkCodec
{
    /// <summary>Compresses into <paramref name="destination"/>; returns the size, or -1 when it would not shrink.</summary>
    public static int Compress(ChunkCompression compression, ReadOnlySpan<byte> source, Span<byte> destination, int zstdLevel = 3)
    {
        switch (compression)
        {
            case ChunkCompression.Zstd:
                int written = Rafs.Interop.LibZstd.Compress(source, destination, zstdLevel);
                return written > 0 && written < source.Length ? written : -1;
            case ChunkCompression.Lz4:
                int n = K4os.Compression.LZ4.LZ4Codec.Encode(source, destination);
                return n > 0 && n < source.Length ? n : -1;
            default:
                return -1;
        }
    }

    public static int MaxCompressedSize(int size) => size + size / 128 + 1024;

    /// <summary>Decompresses exactly <paramref name="destination"/>.Length bytes or throws InvalidDataException.</summary>
    public static void Decompress(ChunkCompression compression, ReadOnlySpan<byte> source, Span<byte> destination, string where)
    {
        switch (compression)
        {
            case ChunkCompression.None:
                if (source.Length != destination.Length) throw new InvalidDataException($"{where}: stored size {source.Length} != chunk size {destination.Length}");
                source.CopyTo(destination);
                return;
            case ChunkCompression.Zstd:
                if (Rafs.Interop.LibZstd.Decompress(source, destination) != destination.Length)
                    throw new InvalidDataException($"{where}: zstd chunk is corrupt or decodes to the wrong size");
                return;
            case ChunkCompression.Lz4:
                int n = K4os.Compression.LZ4.LZ4Codec.Decode(source, destination);
                if (n != destination.Length) throw new InvalidDataException($"{where}: lz4 chunk is corrupt");
                return;
            default:
                throw new InvalidDataException($"{where}: unknown chunk compression {(int)compression}");
        }
    }
}
