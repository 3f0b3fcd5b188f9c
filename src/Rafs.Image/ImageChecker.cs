using Rafs.Format;
using Rafs.Storage;

namespace Rafs.Image;

/// <summary>What <see cref="ImageChecker"/> found.</summary>
public sealed class CheckReport
{
    public long Inodes { get; set; }
    public long Directories { get; set; }
    public long Files { get; set; }
    public long Symlinks { get; set; }
    public long Specials { get; set; }
    public long DataBytes { get; set; }
    public long Chunks { get; set; }
    public long HoleChunks { get; set; }
    public long Xattrs { get; set; }
    /// <summary>Blob chunks decoded and verified against their digests.</summary>
    public long BlobChunks { get; set; }
    public List<string> Errors { get; } = [];
    public List<string> Warnings { get; } = [];
    public bool Ok => Errors.Count == 0;
}

/// <summary>
/// Walks every inode, directory, xattr, chunk and data byte of an image, checking structure, bounds, link
/// counts and blob digests. Problems go into the report; nothing about a bad image escapes as an exception.
/// </summary>
public static class ImageChecker
{
    public static CheckReport Check(string imagePath, IDeviceResolver? devices, string? blobDirectory = null)
    {
        var report = new CheckReport();
        ErofsImage image;
        try
        {
            image = ErofsImage.Open(imagePath, devices);
        }
        catch (Exception e) when (e is ImageException or IOException)
        {
            report.Errors.Add(e.Message);
            return report;
        }
        using (image) return Check(image, blobDirectory, report);
    }

    /// <summary>Checks an image that is already open; <paramref name="blobDirectory"/> enables blob digest checks.</summary>
    public static CheckReport Check(ErofsImage image, string? blobDirectory = null, CheckReport? report = null)
    {
        report ??= new CheckReport();
        CheckBlobs(image, blobDirectory, report);
        try
        {
            CheckTree(image, report);
        }
        catch (Exception e) when (e is ImageException or IOException or ArgumentException)
        {
            report.Errors.Add($"walk stopped: {e.Message}");
        }
        return report;
    }

    /// <summary>Each blob: present, sha256 equal to its device tag, chunk table intact, every chunk decoding to its digest.</summary>
    private static void CheckBlobs(ErofsImage image, string? blobDirectory, CheckReport report)
    {
        if (blobDirectory is null) return;
        var blobs = new BlobDirectory(blobDirectory);
        for (int i = 0; i < image.Devices.Count; i++)
        {
            var slot = image.Devices[i];
            if (!BlobDigest.TryParse(slot.Tag, out var digest))
            {
                report.Warnings.Add($"device {i + 1}: tag '{slot.Tag}' is not a digest; blob not verified");
                continue;
            }
            var path = blobs.PathOf(digest);
            if (!File.Exists(path)) { report.Errors.Add($"blob {digest} is missing from {blobs.Path}"); continue; }
            var actual = BlobDigest.OfFile(path);
            if (actual != digest) report.Errors.Add($"blob {path} is corrupt: sha256 {actual.Hex}, expected {digest.Hex}");
            try
            {
                using var file = File.OpenHandle(path);
                var table = BlobTable.Read(file, path);
                if (table.Footer.DeviceSize != (long)slot.Blocks * ErofsFormat.BlockSize)
                    report.Errors.Add($"blob {digest}: device layout of {table.Footer.DeviceSize} bytes, the device table says {(long)slot.Blocks * ErofsFormat.BlockSize}");
                var stored = new byte[ChunkCodec.MaxCompressedSize(BlobTable.MaxChunkSize)];
                var chunk = new byte[BlobTable.MaxChunkSize];
                int bad = 0;
                foreach (var entry in table.Chunks)
                {
                    try
                    {
                        BlobTable.ReadExactly(file, stored.AsSpan(0, entry.StoredSize), entry.StoredOffset, path);
                        BlobTable.DecodeChunk(entry, stored.AsSpan(0, entry.StoredSize), chunk, path);
                    }
                    catch (InvalidDataException e)
                    {
                        if (bad++ < 10) report.Errors.Add($"blob {digest}: {e.Message}");
                    }
                }
                report.BlobChunks += table.Chunks.Count;
                if (bad > 10) report.Errors.Add($"blob {digest}: {bad - 10} more bad chunks");
            }
            catch (InvalidDataException e)
            {
                report.Errors.Add($"blob {digest}: {e.Message}");
            }
        }
    }

    private static void CheckTree(ErofsImage image, CheckReport report)
    {
        var linkCounts = new Dictionary<ulong, (uint Expected, uint Seen, string Path)>();
        var subdirCounts = new Dictionary<ulong, uint>();
        var buffer = new byte[1 << 20];
        foreach (var entry in ImageWalker.Walk(image))
        {
            var inode = entry.Inode;
            try
            {
                if (inode.IsDirectory)
                {
                    if (entry.Path != "/") subdirCounts[entry.ParentNid] = subdirCounts.GetValueOrDefault(entry.ParentNid) + 1;
                    report.Directories++;
                    report.Inodes++;
                    CheckDots(image, inode, entry, report);
                }
                else
                {
                    if (linkCounts.TryGetValue(inode.Nid, out var seen))
                    {
                        linkCounts[inode.Nid] = seen with { Seen = seen.Seen + 1 };
                        continue;
                    }
                    linkCounts[inode.Nid] = (inode.Disk.Nlink, 1, entry.Path);
                    report.Inodes++;
                    if (inode.IsRegular) report.Files++;
                    else if (inode.IsSymlink) { report.Symlinks++; image.ReadSymlink(inode); }
                    else report.Specials++;
                }
                report.Xattrs += image.ReadXattrs(inode).Count;
                if (inode.IsRegular) CheckData(image, inode, buffer, report);
            }
            catch (Exception e) when (e is ImageException or IOException or ArgumentException)
            {
                report.Errors.Add($"{entry.Path}: {e.Message}");
            }
        }
        foreach (var entry in ImageWalker.Walk(image).Where(e => e.Inode.IsDirectory))
        {
            uint expected = 2 + subdirCounts.GetValueOrDefault(entry.Inode.Nid);
            if (entry.Inode.Disk.Nlink != expected)
                report.Errors.Add($"{entry.Path}: directory nlink {entry.Inode.Disk.Nlink}, but it has {expected - 2} subdirectories");
        }
        foreach (var (nid, (expected, seen, path)) in linkCounts)
            if (expected != seen)
                report.Errors.Add($"{path}: nlink {expected}, but {seen} names refer to nid {nid}");
        if ((ulong)report.Inodes != image.SuperBlock.Inodes)
            report.Warnings.Add($"superblock counts {image.SuperBlock.Inodes} inodes, the tree has {report.Inodes}");
    }

    private static void CheckDots(ErofsImage image, ErofsInode dir, WalkEntry entry, CheckReport report)
    {
        ulong? dot = null, dotdot = null;
        foreach (var e in image.ReadDirectory(dir))
        {
            if (e.Name.AsSpan().SequenceEqual("."u8)) dot = e.Nid;
            else if (e.Name.AsSpan().SequenceEqual(".."u8)) dotdot = e.Nid;
        }
        if (dot != dir.Nid) report.Errors.Add($"{entry.Path}: '.' is {(dot is null ? "missing" : $"nid {dot}")}, expected nid {dir.Nid}");
        if (dotdot != entry.ParentNid) report.Errors.Add($"{entry.Path}: '..' is {(dotdot is null ? "missing" : $"nid {dotdot}")}, expected nid {entry.ParentNid}");
    }

    /// <summary>A device's size from its slot; mkfs.erofs 1.5 leaves the slot's block count 0, so then the file's own size.</summary>
    private static long DeviceBytes(ErofsImage image, int device, ErofsInode inode)
    {
        if (device == 0) return image.ImageBlocks * ErofsFormat.BlockSize;
        uint blocks = image.Devices[device - 1].Blocks;
        return blocks > 0 ? (long)blocks * ErofsFormat.BlockSize : image.SourceOf(device, inode).Length;
    }

    /// <summary>Reads every stored byte (holes are skipped) and checks each chunk lies inside its device.</summary>
    private static void CheckData(ErofsImage image, ErofsInode inode, byte[] buffer, CheckReport report)
    {
        foreach (var extent in image.MapExtents(inode))
        {
            if (inode.Layout == InodeDataLayout.ChunkBased)
            {
                report.Chunks++;
                if (extent.IsHole) { report.HoleChunks++; continue; }
                long deviceBytes = DeviceBytes(image, extent.Device, inode);
                if (extent.Physical + extent.Length > deviceBytes)
                    throw new ImageCorruptException($"chunk at {extent.Logical} ends at byte {extent.Physical + extent.Length} of device {extent.Device}, which has {deviceBytes}");
            }
            var source = image.SourceOf(extent.Device, inode);
            for (long done = 0; done < extent.Length;)
            {
                int n = (int)Math.Min(buffer.Length, extent.Length - done);
                source.ReadExactly(extent.Physical + done, buffer.AsSpan(0, n));
                done += n;
            }
            report.DataBytes += extent.Length;
        }
    }
}
