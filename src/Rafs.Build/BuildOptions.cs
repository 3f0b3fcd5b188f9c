namespace Rafs.Build;

/// <summary>What a build produces and how. Immutable; pass it down instead of sharing settings.</summary>
public sealed record BuildOptions
{
    public const int DefaultChunkSizeBits = 20;

    /// <summary>Filesystem UUID; random when null.</summary>
    public Guid? Uuid { get; init; }
    /// <summary>Superblock build time (seconds since the epoch); now (or SOURCE_DATE_EPOCH) when null.</summary>
    public long? Timestamp { get; init; }
    /// <summary>Chunk size of the bootstrap + blob layout, as a power of two (12..24).</summary>
    public int ChunkSizeBits { get; init; } = DefaultChunkSizeBits;
    public string VolumeName { get; init; } = "";
    /// <summary>How blob chunks are stored (the device layout the kernel reads is always uncompressed).</summary>
    public Rafs.Storage.ChunkCompression Compression { get; init; } = Rafs.Storage.ChunkCompression.Zstd;
    /// <summary>Bootstraps of earlier images (their blobs in the same blob directory) whose chunks are referenced, not stored again.</summary>
    public IReadOnlyList<string> ChunkDictionaries { get; init; } = [];
    public IProgress<BuildProgress>? Progress { get; init; }
    /// <summary>Receives warnings such as skipped xattrs that EROFS cannot store.</summary>
    public Action<string>? Warn { get; init; }

    public static int ParseChunkSize(long bytes)
    {
        if (bytes <= 0 || (bytes & (bytes - 1)) != 0)
            throw new ArgumentException($"chunk size {bytes} is not a power of two");
        int bits = System.Numerics.BitOperations.Log2((ulong)bytes);
        if (bits < Rafs.Format.ErofsFormat.MinChunkSizeBits || bits > Rafs.Format.ErofsFormat.MaxChunkSizeBits)
            throw new ArgumentException($"chunk size {bytes} is outside 4 KiB .. 16 MiB");
        return bits;
    }
}

public readonly record struct BuildProgress(string Phase, long Done, long Total);

/// <summary>What a build wrote.</summary>
public sealed record BuildResult
{
    public required string OutputPath { get; init; }
    public required long OutputBytes { get; init; }
    public required long Inodes { get; init; }
    public string? BlobPath { get; init; }
    public string? BlobDigest { get; init; }
    /// <summary>Digests of all blobs the bootstrap names, in device-table order.</summary>
    public IReadOnlyList<string> Blobs { get; init; } = [];
    /// <summary>Size of the stored (compressed) blob.</summary>
    public long BlobBytes { get; init; }
    /// <summary>Size of the blob's uncompressed device layout.</summary>
    public long BlobDeviceBytes { get; init; }
    public long DataBytes { get; init; }
    public long Chunks { get; init; }
    public long UniqueChunks { get; init; }
    public long HoleChunks { get; init; }
    /// <summary>Bytes not stored again thanks to deduplication.</summary>
    public long DedupSavedBytes { get; init; }
}
