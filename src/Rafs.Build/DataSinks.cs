using System.Security.Cryptography;
using Rafs.Format;
using Microsoft.Win32.SafeHandles;

namespace Rafs.Build;

/// <summary>
/// Appends whole blocks to a file at a block cursor. The self-contained image writes its data area through one;
/// a blob is one of its own. Writes are sequential, so a running sha256 of the file can be kept on the side.
/// </summary>
internal sealed class BlockAppender(SafeFileHandle file, long startBlock, bool hashContent) : IChunkTarget, IDisposable
{
    private static readonly byte[] Zeros = new byte[ErofsFormat.BlockSize];
    private readonly IncrementalHash? _hash = hashContent ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;

    public long NextBlock { get; private set; } = startBlock;
    public SafeFileHandle File => file;

    /// <summary>Writes <paramref name="data"/> padded with zeros to whole blocks; returns its first block.</summary>
    public uint Append(ReadOnlySpan<byte> data)
    {
        long first = NextBlock;
        if (first > uint.MaxValue) throw new InvalidOperationException("image exceeds 2^32 blocks (16 TiB)");
        long offset = first << ErofsFormat.BlockSizeBits;
        RandomAccess.Write(file, data, offset);
        _hash?.AppendData(data);
        int pad = (int)((-data.Length) & (ErofsFormat.BlockSize - 1));
        if (pad > 0)
        {
            RandomAccess.Write(file, Zeros.AsSpan(0, pad), offset + data.Length);
            _hash?.AppendData(Zeros.AsSpan(0, pad));
        }
        NextBlock += (data.Length + pad) >> ErofsFormat.BlockSizeBits;
        return (uint)first;
    }

    uint IChunkTarget.Write(ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> digest) => Append(chunk);

    public byte[] FinishHash() => _hash?.GetHashAndReset() ?? throw new InvalidOperationException("not hashing");

    public void Dispose() => _hash?.Dispose();
}

/// <summary>Where unique chunks go: the image's own data area, or a blob. Returns the chunk's block address on its device.</summary>
internal interface IChunkTarget
{
    uint Write(ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> digest);
}

/// <summary>A stored (compressed) blob as a chunk target; addresses are in its uncompressed device layout.</summary>
internal sealed class BlobTarget(Rafs.Storage.BlobWriter writer) : IChunkTarget
{
    public uint Write(ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> digest) => writer.AddChunk(chunk, digest);
}

/// <summary>
/// Every chunk stored so far in a build, by sha256 and length, across all its devices: what lets a layer, or
/// a later file, point at a chunk an earlier one already stored.
/// </summary>
internal sealed class ChunkDictionary
{
    private readonly Dictionary<ChunkKey, ChunkIndex> _stored = [];

    public bool TryGet(ReadOnlySpan<byte> digest, int length, out ChunkIndex index) => _stored.TryGetValue(new ChunkKey(digest, length), out index);

    public void Add(ReadOnlySpan<byte> digest, int length, ChunkIndex index) => _stored[new ChunkKey(digest, length)] = index;

    private readonly record struct ChunkKey(UInt128 Low, UInt128 High, int Length)
    {
        public ChunkKey(ReadOnlySpan<byte> digest, int length)
            : this(System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest),
                   System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(digest[16..]), length) { }
    }
}

/// <summary>Stores chunks on one device unless the dictionary already has them, and hands out their chunk indexes.</summary>
internal sealed class ChunkStore(IChunkTarget target, ushort deviceId, ChunkDictionary? dictionary = null)
{
    private readonly ChunkDictionary _dictionary = dictionary ?? new ChunkDictionary();

    public long Chunks { get; private set; }
    public long UniqueChunks { get; private set; }
    public long HoleChunks { get; private set; }
    public long DedupSavedBytes { get; private set; }
    public ushort DeviceId => deviceId;

    public ChunkIndex Put(ReadOnlySpan<byte> chunk)
    {
        Chunks++;
        if (!chunk.ContainsAnyExcept((byte)0))
        {
            HoleChunks++;
            return ChunkIndex.Hole;
        }
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(chunk, digest);
        if (_dictionary.TryGet(digest, chunk.Length, out var existing))
        {
            DedupSavedBytes += chunk.Length;
            return existing;
        }
        var index = new ChunkIndex(0, deviceId, target.Write(chunk, digest));
        _dictionary.Add(digest, chunk.Length, index);
        UniqueChunks++;
        return index;
    }

    public void CountHole() { Chunks++; HoleChunks++; }
}
