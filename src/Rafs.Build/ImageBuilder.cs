using Rafs.Format;
using Rafs.Storage;

namespace Rafs.Build;

/// <summary>Turns a source tree into an EROFS image: self-contained, or a bootstrap plus one content-addressed blob.</summary>
public static class ImageBuilder
{
    /// <summary>One EROFS file holding data and metadata. Sparse files become chunk-based, so holes cost nothing.</summary>
    public static BuildResult BuildImage(BuildTree tree, string imagePath, BuildOptions options)
    {
        var (inodes, buildTime, xattrs) = Prepare(tree, options);
        imagePath = Path.GetFullPath(imagePath);
        var temporary = TemporaryNextTo(imagePath);
        try
        {
            long blocks;
            ChunkStore chunks;
            using (var file = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.ReadWrite))
            using (var area = new BlockAppender(file, MetadataWriter.HeaderBlocks(0), hashContent: false))
            {
                chunks = new ChunkStore(area, deviceId: 0);
                using var data = new DataWriter(area, chunks, fixedChunkBits: null, buildTime, Path.GetDirectoryName(imagePath)!, options.Progress);
                data.WriteAll(inodes, tree.DataBytes);
                options.Progress?.Report(new BuildProgress("metadata", 0, inodes.Count));
                blocks = new MetadataWriter(inodes, buildTime).Write(file, area.NextBlock, xattrs, [], data,
                    options.Uuid ?? Guid.NewGuid(), options.VolumeName);
            }
            File.Move(temporary, imagePath, overwrite: true);
            return Result(imagePath, blocks * ErofsFormat.BlockSize, inodes.Count, tree, chunks);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>
    /// The RAFS v6 layout: a metadata-only bootstrap whose chunk-based inodes point into one blob (extra device 1).
    /// The blob is stored compressed, chunk by chunk (see docs/format.md), in <paramref name="blobDirectory"/> under
    /// the sha256 of its stored bytes; chunk indexes address its uncompressed device layout. Identical chunks are stored once.
    /// </summary>
    public static BuildResult BuildBootstrap(BuildTree tree, string bootstrapPath, string blobDirectory, BuildOptions options)
    {
        var (inodes, buildTime, xattrs) = Prepare(tree, options);
        bootstrapPath = Path.GetFullPath(bootstrapPath);
        var blobs = new BlobDirectory(blobDirectory);
        var blobTemporary = blobs.CreateTemporaryPath();
        var bootTemporary = TemporaryNextTo(bootstrapPath);
        try
        {
            ChunkStore chunks;
            BlobDigest? digest = null;
            long storedBytes = 0, deviceBytes = 0;
            List<DeviceSlot> devices;
            using (var blob = new BlobWriter(blobTemporary, options.Compression))
            {
                var table = new DeviceTable();
                var dictionary = new ChunkDictionary();
                table.LoadChunkDictionary(options.ChunkDictionaries, blobs, dictionary);
                ushort id = table.Reserve();
                chunks = new ChunkStore(new BlobTarget(blob), id, dictionary);
                using var data = new DataWriter(null, chunks, options.ChunkSizeBits, buildTime, blobs.Path, options.Progress);
                data.WriteAll(inodes, tree.DataBytes);
                bool hasData = blob.ChunkCount > 0;
                var (blobDigest, stored, device) = blob.Finish();
                if (hasData)
                {
                    (digest, storedBytes, deviceBytes) = (blobDigest, stored, device);
                    table.Set(id, new DeviceSlot(blobDigest.Hex, checked((uint)(device >> ErofsFormat.BlockSizeBits)), 0));
                }
                devices = table.Finish(inodes);
                options.Progress?.Report(new BuildProgress("metadata", 0, inodes.Count));
                using var boot = File.OpenHandle(bootTemporary, FileMode.CreateNew, FileAccess.ReadWrite);
                new MetadataWriter(inodes, buildTime).Write(boot, MetadataWriter.HeaderBlocks(devices.Count), xattrs, devices, data,
                    options.Uuid ?? Guid.NewGuid(), options.VolumeName);
            }
            string? blobPath = null;
            if (digest is { } final) blobPath = blobs.Commit(blobTemporary, final);
            File.Move(bootTemporary, bootstrapPath, overwrite: true);
            return Result(bootstrapPath, new FileInfo(bootstrapPath).Length, inodes.Count, tree, chunks) with
            {
                BlobPath = blobPath,
                BlobDigest = digest?.Hex,
                Blobs = devices.Select(d => d.Tag).ToList(),
                BlobBytes = storedBytes,
                BlobDeviceBytes = deviceBytes,
            };
        }
        finally
        {
            File.Delete(blobTemporary);
            File.Delete(bootTemporary);
        }
    }

    /// <summary>
    /// Merges OCI layer tars (in order, overlay semantics) into one bootstrap plus one stored blob per layer that
    /// brought new data. Chunks are deduplicated across layers: a layer's blob holds only chunks no earlier layer has.
    /// </summary>
    public static BuildResult BuildFromLayers(IReadOnlyList<string> layers, string bootstrapPath, string blobDirectory, BuildOptions options)
    {
        bootstrapPath = Path.GetFullPath(bootstrapPath);
        var blobs = new BlobDirectory(blobDirectory);
        var importer = new Layers.LayerImporter(options.ChunkSizeBits);
        var dictionary = new ChunkDictionary();
        var table = new DeviceTable();
        table.LoadChunkDictionary(options.ChunkDictionaries, blobs, dictionary);
        var temporaries = new List<string>();
        long chunkCount = 0, unique = 0, holes = 0, saved = 0, storedTotal = 0, deviceTotal = 0;
        string? lastBlob = null;
        var bootTemporary = TemporaryNextTo(bootstrapPath);
        try
        {
            for (int i = 0; i < layers.Count; i++)
            {
                var temporary = blobs.CreateTemporaryPath();
                temporaries.Add(temporary);
                using var blob = new BlobWriter(temporary, options.Compression);
                ushort id = table.Reserve();
                var chunks = new ChunkStore(new BlobTarget(blob), id, dictionary);
                importer.Import(layers[i], i, chunks, options.Progress);
                bool hasData = blob.ChunkCount > 0;
                var (digest, stored, device) = blob.Finish();
                (chunkCount, unique, holes, saved) = (chunkCount + chunks.Chunks, unique + chunks.UniqueChunks, holes + chunks.HoleChunks, saved + chunks.DedupSavedBytes);
                if (!hasData) continue;
                blob.Dispose();
                lastBlob = blobs.Commit(temporary, digest);
                table.Set(id, new DeviceSlot(digest.Hex, checked((uint)(device >> ErofsFormat.BlockSizeBits)), 0));
                storedTotal += stored;
                deviceTotal += device;
            }
            var tree = importer.ToTree();
            var inodes = tree.InodeOrder();
            // Layers without new data got no blob, and dictionary blobs may go unused: renumber to the final table.
            var devices = table.Finish(inodes);
            long buildTime = options.Timestamp ?? SourceDateEpoch() ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var xattrs = new XattrPlanner(inodes);
            using (var boot = File.OpenHandle(bootTemporary, FileMode.CreateNew, FileAccess.ReadWrite))
                new MetadataWriter(inodes, buildTime).Write(boot, MetadataWriter.HeaderBlocks(devices.Count), xattrs, devices, tails: null,
                    options.Uuid ?? Guid.NewGuid(), options.VolumeName);
            File.Move(bootTemporary, bootstrapPath, overwrite: true);
            return new BuildResult
            {
                OutputPath = bootstrapPath,
                OutputBytes = new FileInfo(bootstrapPath).Length,
                Inodes = inodes.Count,
                BlobPath = lastBlob,
                BlobDigest = devices.Count > 0 ? devices[^1].Tag : null,
                Blobs = devices.Select(d => d.Tag).ToList(),
                BlobBytes = storedTotal,
                BlobDeviceBytes = deviceTotal,
                DataBytes = tree.DataBytes,
                Chunks = chunkCount,
                UniqueChunks = unique,
                HoleChunks = holes,
                DedupSavedBytes = saved,
            };
        }
        finally
        {
            foreach (var t in temporaries) File.Delete(t);
            File.Delete(bootTemporary);
        }
    }

    private static BuildResult Result(string output, long outputBytes, int inodes, BuildTree tree, ChunkStore chunks) => new()
    {
        OutputPath = output,
        OutputBytes = outputBytes,
        Inodes = inodes,
        DataBytes = tree.DataBytes,
        Chunks = chunks.Chunks,
        UniqueChunks = chunks.UniqueChunks,
        HoleChunks = chunks.HoleChunks,
        DedupSavedBytes = chunks.DedupSavedBytes,
    };

    private static (List<BuildNode> Inodes, long BuildTime, XattrPlanner Xattrs) Prepare(BuildTree tree, BuildOptions options)
    {
        var inodes = tree.InodeOrder();
        long buildTime = options.Timestamp ?? SourceDateEpoch() ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return (inodes, buildTime, new XattrPlanner(inodes));
    }

    /// <summary>The reproducible-builds convention: SOURCE_DATE_EPOCH fixes the build time.</summary>
    private static long? SourceDateEpoch() =>
        long.TryParse(Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH"), out long t) ? t : null;

    private static string TemporaryNextTo(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, $".{Path.GetFileName(path)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
    }
}
