using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Rafs.Format;

namespace Rafs.Storage;

/// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/> of a blob, wherever it is.</summary>
public delegate void RangeRead(long offset, Span<byte> buffer);

/// <summary>A blob's chunk table, read from its footer and verified against the footer's table digest.</summary>
public sealed record BlobTable(BlobFooter Footer, IReadOnlyList<BlobChunkEntry> Chunks)
{
    /// <summary>Largest chunk Rafs writes (16 MiB); anything bigger in a table is corruption.</summary>
    public const int MaxChunkSize = 1 << ErofsFormat.MaxChunkSizeBits;

    public long StoredChunkBytes => Chunks.Sum(c => (long)c.StoredSize);
    public long UncompressedBytes => Chunks.Sum(c => (long)c.Size);

    /// <summary>Decodes a table from its bytes, checking each entry against the blob's shape.</summary>
    public static BlobTable Parse(BlobFooter footer, ReadOnlySpan<byte> table, string where)
    {
        if (!SHA256.HashData(table).AsSpan().SequenceEqual(footer.TableDigest))
            throw new InvalidDataException($"{where}: chunk table does not match its digest; the blob is corrupt");
        var chunks = new List<BlobChunkEntry>(footer.ChunkCount);
        for (int i = 0; i < footer.ChunkCount; i++)
        {
            var e = BlobChunkEntry.Read(table[(i * BlobChunkEntry.EntrySize)..]);
            if (e.StoredOffset < 0 || e.StoredSize < 0 || e.StoredOffset + e.StoredSize > footer.TableOffset ||
                e.Size <= 0 || e.Size > MaxChunkSize || e.StoredSize > ChunkCodec.MaxCompressedSize(e.Size) ||
                e.DeviceOffset < 0 || e.DeviceOffset % ErofsFormat.BlockSize != 0 || e.DeviceOffset + e.Size > footer.DeviceSize)
                throw new InvalidDataException($"{where}: chunk {i} has out-of-range offsets or sizes; the blob is corrupt");
            chunks.Add(e);
        }
        return new BlobTable(footer, chunks);
    }

    /// <summary>Reads and checks the footer of a blob of <paramref name="length"/> bytes, wherever it is stored.</summary>
    public static BlobFooter ReadFooter(RangeRead read, long length, string where)
    {
        if (length < BlobFooter.FooterSize) throw new InvalidDataException($"{where}: {length} bytes is too small for a blob");
        var footerBytes = new byte[BlobFooter.FooterSize];
        read(length - BlobFooter.FooterSize, footerBytes);
        var footer = BlobFooter.Read(footerBytes, where);
        if (footer.TableOffset + footer.TableSize + BlobFooter.FooterSize != length)
            throw new InvalidDataException($"{where}: footer says the table is at {footer.TableOffset} ({footer.ChunkCount} chunks), which does not fit the blob's {length} bytes");
        return footer;
    }

    /// <summary>Reads footer then table from a local stored blob.</summary>
    public static BlobTable Read(SafeFileHandle file, string where)
    {
        var footer = ReadFooter((offset, buffer) => ReadExactly(file, buffer, offset, where), RandomAccess.GetLength(file), where);
        var table = new byte[footer.TableSize];
        ReadExactly(file, table, footer.TableOffset, where);
        return Parse(footer, table, where);
    }

    /// <summary>Reads a blob's tail (table then footer) kept on its own, as the cache keeps it.</summary>
    public static BlobTable ReadFooterAndTable(SafeFileHandle file, string where)
    {
        long length = RandomAccess.GetLength(file);
        if (length < BlobFooter.FooterSize) throw new InvalidDataException($"{where}: {length} bytes is too small for a chunk table");
        var bytes = new byte[length];
        ReadExactly(file, bytes, 0, where);
        var footer = BlobFooter.Read(bytes.AsSpan((int)(length - BlobFooter.FooterSize)), where);
        if (footer.TableSize + BlobFooter.FooterSize != length)
            throw new InvalidDataException($"{where}: {footer.ChunkCount} chunks do not fit its {length} bytes");
        return Parse(footer, bytes.AsSpan(0, (int)footer.TableSize), where);
    }

    /// <summary>Decompresses one chunk and checks its sha256; the data is never returned unverified.</summary>
    public static void DecodeChunk(BlobChunkEntry entry, ReadOnlySpan<byte> stored, Span<byte> output, string where)
    {
        ChunkCodec.Decompress(entry.Compression, stored, output[..entry.Size], where);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(output[..entry.Size], digest);
        if (!digest.SequenceEqual(entry.Digest))
            throw new InvalidDataException($"{where}: chunk at device offset {entry.DeviceOffset} fails its sha256 check; the blob is corrupt");
    }

    /// <summary>Positional read of exactly buffer.Length bytes of a blob file.</summary>
    public static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string where)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n <= 0) throw new InvalidDataException($"{where}: unexpected end of blob at offset {offset}");
            buffer = buffer[n..];
            offset += n;
        }
    }
}

/// <summary>Turns a stored blob into its uncompressed device layout (the file EROFS reads), verifying everything.</summary>
public static class BlobMaterializer
{
    /// <summary>
    /// Verifies the blob's digest, then decodes and verifies every chunk into a new sparse file at
    /// <paramref name="devicePath"/> (written to a temporary name and renamed, so a present file is complete).
    /// </summary>
    public static BlobTable Materialize(string storedPath, string devicePath, BlobDigest? expected = null, IProgress<long>? progress = null)
    {
        if (expected is { } want)
        {
            var actual = BlobDigest.OfFile(storedPath);
            if (actual != want)
                throw new InvalidDataException($"blob {storedPath} is corrupt: its sha256 is {actual.Hex}, expected {want.Hex}; fetch it again");
        }
        using var input = File.OpenHandle(storedPath, FileMode.Open, FileAccess.Read);
        var table = BlobTable.Read(input, storedPath);
        var temporary = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(devicePath))!, $".{Path.GetFileName(devicePath)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var output = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                RandomAccess.SetLength(output, table.Footer.DeviceSize);
                var stored = new byte[ChunkCodec.MaxCompressedSize(BlobTable.MaxChunkSize)];
                var chunk = new byte[BlobTable.MaxChunkSize];
                long done = 0;
                foreach (var entry in table.Chunks)
                {
                    BlobTable.ReadExactly(input, stored.AsSpan(0, entry.StoredSize), entry.StoredOffset, storedPath);
                    BlobTable.DecodeChunk(entry, stored.AsSpan(0, entry.StoredSize), chunk, storedPath);
                    RandomAccess.Write(output, chunk.AsSpan(0, entry.Size), entry.DeviceOffset);
                    progress?.Report(done += entry.Size);
                }
            }
            File.Move(temporary, devicePath, overwrite: true);
            return table;
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
