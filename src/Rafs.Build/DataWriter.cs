using Rafs.Format;
using Rafs.Interop;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Build;

/// <summary>Gives the metadata writer the tails of flat files that are inlined after their inodes.</summary>
internal interface ITailSource
{
    void ReadTail(FlatData data, Span<byte> destination);
}

/// <summary>
/// Streams every regular file's data out of the source tree, once, in inode order. Self-contained images get flat
/// files (sparse ones become chunk-based with null indexes for holes); the blob layout chunks every file into the
/// deduplicating <see cref="ChunkStore"/>. Tails that will be inlined go to a spill file for the metadata writer.
/// </summary>
internal sealed class DataWriter : ITailSource, IDisposable
{
    private const int CopyBufferSize = 4 << 20;
    /// <summary>Chunk sizes tried for sparse files in self-contained images (4 KiB .. 1 MiB).</summary>
    private const int MaxSparseChunkBits = 20;

    private readonly BlockAppender? _flatArea;
    private readonly ChunkStore _chunks;
    private readonly int? _fixedChunkBits;
    private readonly long _buildTime;
    private readonly IProgress<BuildProgress>? _progress;
    private readonly FileStream _spill;
    private byte[] _buffer = new byte[CopyBufferSize];

    /// <param name="flatArea">Where flat files go; null for the blob layout, where every file is chunked.</param>
    /// <param name="fixedChunkBits">The blob layout's chunk size; null lets sparse files pick their own.</param>
    public DataWriter(BlockAppender? flatArea, ChunkStore chunks, int? fixedChunkBits, long buildTime, string spillDirectory,
        IProgress<BuildProgress>? progress)
    {
        _flatArea = flatArea;
        _chunks = chunks;
        _fixedChunkBits = fixedChunkBits;
        _buildTime = buildTime;
        _progress = progress;
        _spill = new FileStream(Path.Combine(spillDirectory, $".rafs-spill-{Guid.NewGuid():N}"), FileMode.CreateNew,
            FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
    }

    public ChunkStore Chunks => _chunks;

    public void WriteAll(IReadOnlyList<BuildNode> inodes, long totalBytes)
    {
        long done = 0;
        foreach (var node in inodes)
        {
            if (!node.IsRegular || node.Size == 0 || node.Data is not null) continue;
            using (var file = File.OpenHandle(node.SourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan))
            {
                var extents = PosixFs.DataExtents(file, node.Size);
                node.Data = _fixedChunkBits is int bits
                    ? WriteChunked(node, file, extents, bits)
                    : IsSparse(extents, node.Size) ? WriteChunked(node, file, extents, ChooseSparseChunkBits(extents, node.Size))
                    : WriteFlat(node, file);
            }
            done += node.Size;
            _progress?.Report(new BuildProgress("data", done, totalBytes));
        }
    }

    /// <summary>Reads the spilled tail of a flat file for inlining.</summary>
    public void ReadTail(FlatData data, Span<byte> destination)
    {
        _spill.Position = data.TailSpillOffset;
        _spill.ReadExactly(destination[..data.TailLength]);
    }

    private FlatData WriteFlat(BuildNode node, SafeFileHandle file)
    {
        var appender = _flatArea!;
        long fullBlocks = node.Size >> ErofsFormat.BlockSizeBits;
        int tail = (int)(node.Size & (ErofsFormat.BlockSize - 1));
        bool inline = InodeShape.TailFitsInline(node, _buildTime, tail);
        long blockBytes = (fullBlocks << ErofsFormat.BlockSizeBits) + (inline ? 0 : tail);
        uint start = (uint)appender.NextBlock;
        long offset = 0;
        while (offset < blockBytes)
        {
            int n = (int)Math.Min(_buffer.Length, blockBytes - offset);
            ReadExactly(node, file, _buffer.AsSpan(0, n), offset);
            appender.Append(_buffer.AsSpan(0, n));
            offset += n;
        }
        long spillOffset = -1;
        if (inline)
        {
            ReadExactly(node, file, _buffer.AsSpan(0, tail), offset);
            spillOffset = _spill.Length;
            _spill.Position = spillOffset;
            _spill.Write(_buffer, 0, tail);
        }
        return new FlatData(blockBytes > 0 ? start : 0, fullBlocks, inline, spillOffset, inline ? tail : 0);
    }

    private ChunkedData WriteChunked(BuildNode node, SafeFileHandle file, List<(long Offset, long Length)> extents, int bits)
    {
        long chunkSize = 1L << bits;
        if (_buffer.Length < chunkSize) _buffer = new byte[chunkSize];
        long count = (node.Size + chunkSize - 1) >> bits;
        var indexes = new ChunkIndex[count];
        int extent = 0;
        for (long i = 0; i < count; i++)
        {
            long start = i << bits;
            int length = (int)Math.Min(chunkSize, node.Size - start);
            while (extent < extents.Count && extents[extent].Offset + extents[extent].Length <= start) extent++;
            bool hasData = extent < extents.Count && extents[extent].Offset < start + length;
            if (!hasData)
            {
                _chunks.CountHole();
                indexes[i] = ChunkIndex.Hole;
                continue;
            }
            var chunk = _buffer.AsSpan(0, length);
            ReadExactly(node, file, chunk, start);
            indexes[i] = _chunks.Put(chunk);
        }
        return new ChunkedData(bits, indexes);
    }

    private static void ReadExactly(BuildNode node, SafeFileHandle file, Span<byte> buffer, long offset)
    {
        while (buffer.Length > 0)
        {
            int n = RandomAccess.Read(file, buffer, offset);
            if (n <= 0)
                throw new IOException($"{node.SourcePath}: file shrank while it was being read (expected {node.Size} bytes); build again from a quiet tree");
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>A file is sparse when at least one whole block of it is a hole.</summary>
    private static bool IsSparse(List<(long Offset, long Length)> extents, long size)
    {
        long covered = 0;
        foreach (var (offset, length) in extents)
        {
            long first = offset >> ErofsFormat.BlockSizeBits;
            long last = (offset + length - 1) >> ErofsFormat.BlockSizeBits;
            covered += last - first + 1;
        }
        long blocks = (size + ErofsFormat.BlockSize - 1) >> ErofsFormat.BlockSizeBits;
        return covered < blocks;
    }

    /// <summary>Picks the chunk size that minimises stored data plus index bytes for this file's holes.</summary>
    private static int ChooseSparseChunkBits(List<(long Offset, long Length)> extents, long size)
    {
        int best = ErofsFormat.BlockSizeBits;
        long bestCost = long.MaxValue;
        for (int bits = ErofsFormat.BlockSizeBits; bits <= MaxSparseChunkBits; bits++)
        {
            long dataChunks = 0, lastCounted = -1;
            foreach (var (offset, length) in extents)
            {
                long first = Math.Max(offset >> bits, lastCounted + 1);
                long last = (offset + length - 1) >> bits;
                if (last >= first) { dataChunks += last - first + 1; lastCounted = last; }
            }
            long chunks = (size + (1L << bits) - 1) >> bits;
            long cost = (dataChunks << bits) + chunks * ChunkIndex.Size;
            if (cost <= bestCost) { bestCost = cost; best = bits; }
        }
        return best;
    }

    public void Dispose() => _spill.Dispose();
}
