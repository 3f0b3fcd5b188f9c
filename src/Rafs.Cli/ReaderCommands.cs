using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Rafs.Format;
using Rafs.Image;

namespace Rafs.Cli;

/// <summary>Verbs that read images with our own reader: inspect, ls, cat, check, unpack.</summary>
internal static class ReaderCommands
{
    public static IEnumerable<Command> Create() => [Inspect(), List(), Cat(), Check(), Unpack(), Export()];

    private static Argument<string> ImageArgument() => new("IMAGE") { Description = "EROFS image or bootstrap" };
    private static Option<string?> BlobDirOption() => new("--blob-dir") { Description = "Directory holding the image's blobs, named by sha256" };
    private static Option<string[]> DeviceOption() => new("--device") { Description = "Extra device files in table order (images whose slots carry no digest)" };

    private static IDeviceResolver? Resolver(string? blobDir, string[]? devices) =>
        devices is { Length: > 0 } ? new ExplicitDeviceResolver(devices) : blobDir is not null ? new BlobDirectoryResolver(blobDir) : null;

    private static Command Inspect()
    {
        var image = ImageArgument();
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var blobDir = BlobDirOption();
        var command = new Command("inspect", "Show the superblock, features, devices and inode counts; per-blob chunk statistics with --blob-dir") { image, json, blobDir };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var img = ErofsImage.Open(parse.GetValue(image)!);
            var blobStats = BlobStatistics(img, parse.GetValue(blobDir));
            var sb = img.SuperBlock;
            long dirs = 0, files = 0, symlinks = 0, specials = 0, chunked = 0, bytes = 0, xattrs = 0;
            var seen = new HashSet<ulong>();
            foreach (var e in ImageWalker.Walk(img))
            {
                if (!seen.Add(e.Inode.Nid)) continue;
                xattrs += e.Inode.Disk.XattrICount > 0 ? 1 : 0;
                switch (e.Inode.Type)
                {
                    case UnixMode.Directory: dirs++; break;
                    case UnixMode.Regular:
                        files++; bytes += e.Inode.Size;
                        if (e.Inode.Layout == InodeDataLayout.ChunkBased) chunked++;
                        break;
                    case UnixMode.Symlink: symlinks++; break;
                    default: specials++; break;
                }
            }
            var built = DateTimeOffset.FromUnixTimeSeconds((long)sb.BuildTime).AddTicks(sb.BuildTimeNsec / 100);
            if (parse.GetValue(json))
            {
                using var stream = Console.OpenStandardOutput();
                using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                w.WriteStartObject();
                w.WriteString("image", Path.GetFullPath(img.DisplayName));
                w.WriteNumber("blockSize", ErofsFormat.BlockSize);
                w.WriteNumber("blocks", sb.Blocks);
                w.WriteString("uuid", sb.Uuid.ToString());
                w.WriteString("volumeName", sb.VolumeName);
                w.WriteNumber("buildTime", sb.BuildTime);
                w.WriteNumber("buildTimeNsec", sb.BuildTimeNsec);
                w.WriteString("features", ErofsFormat.FeatureNames(sb.FeatureCompat, sb.FeatureIncompat));
                w.WriteNumber("rootNid", sb.RootNid);
                w.WriteNumber("inodes", sb.Inodes);
                w.WriteNumber("metaBlockAddress", sb.MetaBlockAddress);
                w.WriteNumber("xattrBlockAddress", sb.XattrBlockAddress);
                w.WriteStartObject("counts");
                w.WriteNumber("directories", dirs); w.WriteNumber("files", files); w.WriteNumber("symlinks", symlinks);
                w.WriteNumber("specials", specials); w.WriteNumber("chunkedFiles", chunked); w.WriteNumber("fileBytes", bytes);
                w.WriteNumber("inodesWithXattrs", xattrs);
                w.WriteEndObject();
                w.WriteStartArray("devices");
                foreach (var d in img.Devices)
                {
                    w.WriteStartObject();
                    w.WriteString("tag", d.Tag); w.WriteNumber("blocks", d.Blocks); w.WriteNumber("mappedBlockAddress", d.MappedBlockAddress);
                    if (blobStats.TryGetValue(d.Tag, out var st))
                    {
                        w.WriteNumber("chunks", st.Chunks); w.WriteNumber("storedBytes", st.StoredBytes);
                        w.WriteNumber("uncompressedBytes", st.UncompressedBytes); w.WriteNumber("referencedBytes", st.ReferencedBytes);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.Flush();
                stream.WriteByte((byte)'\n');
                return 0;
            }
            Console.WriteLine($"image:        {Path.GetFullPath(img.DisplayName)}");
            Console.WriteLine($"size:         {sb.Blocks} blocks of {ErofsFormat.BlockSize} ({CliSupport.Bytes((long)sb.Blocks * ErofsFormat.BlockSize)})");
            Console.WriteLine($"uuid:         {sb.Uuid}");
            if (sb.VolumeName.Length > 0) Console.WriteLine($"volume name:  {sb.VolumeName}");
            Console.WriteLine($"built:        {built.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC ({sb.BuildTime})");
            Console.WriteLine($"features:     {ErofsFormat.FeatureNames(sb.FeatureCompat, sb.FeatureIncompat)}");
            Console.WriteLine($"root nid:     {sb.RootNid} (meta block {sb.MetaBlockAddress}, xattr block {sb.XattrBlockAddress})");
            Console.WriteLine($"inodes:       {sb.Inodes}: {dirs} directories, {files} files ({chunked} chunk-based, {CliSupport.Bytes(bytes)}), {symlinks} symlinks, {specials} special; {xattrs} with xattrs");
            Console.WriteLine($"devices:      {img.Devices.Count}");
            for (int i = 0; i < img.Devices.Count; i++)
            {
                var d = img.Devices[i];
                string tag = d.Tag.Length == 64 ? "sha256:" + d.Tag : d.Tag.Length == 0 ? "(no tag)" : d.Tag;
                Console.WriteLine($"  {i + 1}: {tag} {d.Blocks} blocks ({CliSupport.Bytes((long)d.Blocks * ErofsFormat.BlockSize)})");
                if (blobStats.TryGetValue(d.Tag, out var st))
                    Console.WriteLine($"     {st.Chunks} chunks, {CliSupport.Bytes(st.StoredBytes)} stored for {CliSupport.Bytes(st.UncompressedBytes)} " +
                                      $"({(st.UncompressedBytes > 0 ? 100.0 * st.StoredBytes / st.UncompressedBytes : 0):0.#}%); files reference {CliSupport.Bytes(st.ReferencedBytes)} of it" +
                                      (st.ReferencedBytes > st.UncompressedBytes ? $" (dedup saves {CliSupport.Bytes(st.ReferencedBytes - st.UncompressedBytes)})" : ""));
            }
            return 0;
        }));
        return command;
    }

    private readonly record struct BlobStats(long Chunks, long StoredBytes, long UncompressedBytes, long ReferencedBytes);

    /// <summary>Per blob: chunk count and sizes from its table, and how many bytes the image's files reference in it.</summary>
    private static Dictionary<string, BlobStats> BlobStatistics(ErofsImage img, string? blobDirectory)
    {
        var result = new Dictionary<string, BlobStats>();
        if (blobDirectory is null || img.Devices.Count == 0) return result;
        var referenced = new long[img.Devices.Count + 1];
        var seen = new HashSet<ulong>();
        foreach (var e in ImageWalker.Walk(img))
            if (e.Inode.IsRegular && e.Inode.Layout == InodeDataLayout.ChunkBased && seen.Add(e.Inode.Nid))
                foreach (var extent in img.MapExtents(e.Inode))
                    if (!extent.IsHole) referenced[extent.Device] += extent.Length;
        var blobs = new Rafs.Storage.BlobDirectory(blobDirectory);
        for (int i = 0; i < img.Devices.Count; i++)
        {
            if (!Rafs.Storage.BlobDigest.TryParse(img.Devices[i].Tag, out var digest) || !blobs.Contains(digest)) continue;
            using var file = File.OpenHandle(blobs.PathOf(digest));
            var table = Rafs.Storage.BlobTable.Read(file, blobs.PathOf(digest));
            result[img.Devices[i].Tag] = new BlobStats(table.Chunks.Count, RandomAccess.GetLength(file), table.UncompressedBytes, referenced[i + 1]);
        }
        return result;
    }

    private static Command List()
    {
        var image = ImageArgument();
        var path = new Argument<string>("PATH") { Description = "Directory or file inside the image", DefaultValueFactory = _ => "/" };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "List the whole subtree" };
        var command = new Command("ls", "List a directory of an image, ls -l style") { image, path, recursive };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var img = ErofsImage.Open(parse.GetValue(image)!);
            var start = parse.GetValue(path)!;
            var inode = img.ReadInodeAt(start);
            if (parse.GetValue(recursive))
            {
                var prefix = "/" + start.Trim('/');
                foreach (var e in ImageWalker.Walk(img))
                    if (prefix == "/" || e.Path == prefix || e.Path.StartsWith(prefix + "/", StringComparison.Ordinal))
                        Console.WriteLine(Line(img, e.Inode, e.Path));
                return 0;
            }
            if (!inode.IsDirectory) { Console.WriteLine(Line(img, inode, start)); return 0; }
            foreach (var entry in img.ReadDirectory(inode))
            {
                if (ImageWalker.IsDotOrDotDot(entry.Name)) continue;
                Console.WriteLine(Line(img, img.ReadInode(entry.Nid), entry.NameString));
            }
            return 0;
        }));
        return command;
    }

    private static string Line(ErofsImage img, ErofsInode inode, string name)
    {
        var perms = new char[10];
        perms[0] = UnixMode.TypeChar(inode.Mode);
        const string rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; i++) perms[i + 1] = (inode.Mode & (1 << (8 - i))) != 0 ? rwx[i] : '-';
        if ((inode.Mode & 0x800) != 0) perms[3] = perms[3] == 'x' ? 's' : 'S';
        if ((inode.Mode & 0x400) != 0) perms[6] = perms[6] == 'x' ? 's' : 'S';
        if ((inode.Mode & 0x200) != 0) perms[9] = perms[9] == 'x' ? 't' : 'T';
        string size = inode.IsDevice ? $"{inode.RdevMajor}, {inode.RdevMinor}" : inode.Size.ToString(CultureInfo.InvariantCulture);
        var time = DateTimeOffset.FromUnixTimeSeconds(inode.Disk.Mtime).ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        string link = inode.IsSymlink ? " -> " + System.Text.Encoding.UTF8.GetString(img.ReadSymlink(inode)) : "";
        return $"{new string(perms)} {inode.Disk.Nlink,3} {inode.Disk.Uid,6} {inode.Disk.Gid,6} {size,12} {time} {name}{link}";
    }

    private static Command Cat()
    {
        var image = ImageArgument();
        var path = new Argument<string>("PATH") { Description = "File inside the image" };
        var blobDir = BlobDirOption();
        var device = DeviceOption();
        var command = new Command("cat", "Write a file of an image to stdout") { image, path, blobDir, device };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var img = ErofsImage.Open(parse.GetValue(image)!, Resolver(parse.GetValue(blobDir), parse.GetValue(device)));
            var inode = img.ReadInodeAt(parse.GetValue(path)!);
            if (!inode.IsRegular && !inode.IsSymlink) throw new ArgumentException($"{parse.GetValue(path)} is not a regular file");
            using var stdout = Console.OpenStandardOutput();
            var buffer = new byte[1 << 20];
            for (long offset = 0; offset < inode.Size;)
            {
                int n = img.ReadData(inode, offset, buffer);
                stdout.Write(buffer, 0, n);
                offset += n;
            }
            return 0;
        }));
        return command;
    }

    private static Command Check()
    {
        var image = ImageArgument();
        var blobDir = BlobDirOption();
        var device = DeviceOption();
        var command = new Command("check", "Verify an image: every inode, directory, xattr, chunk and byte; blob digests") { image, blobDir, device };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var started = System.Diagnostics.Stopwatch.StartNew();
            var report = ImageChecker.Check(parse.GetValue(image)!, Resolver(parse.GetValue(blobDir), parse.GetValue(device)), parse.GetValue(blobDir));
            foreach (var w in report.Warnings) Console.Error.WriteLine($"warning: {w}");
            foreach (var e in report.Errors.Take(20)) Console.Error.WriteLine($"error: {e}");
            if (report.Errors.Count > 20) Console.Error.WriteLine($"... and {report.Errors.Count - 20} more errors");
            Console.WriteLine($"{(report.Ok ? "OK" : "FAILED")}: {report.Inodes} inodes ({report.Directories} dirs, {report.Files} files, {report.Symlinks} symlinks, {report.Specials} special), " +
                              $"{CliSupport.Bytes(report.DataBytes)} data, {report.Chunks} chunks ({report.HoleChunks} holes), {report.Xattrs} xattrs, {report.BlobChunks} blob chunks verified, {report.Errors.Count} errors in {started.Elapsed.TotalSeconds:0.00} s");
            return report.Ok ? 0 : 1;
        }));
        return command;
    }

    private static Command Export()
    {
        var image = ImageArgument();
        var output = new Argument<string>("OUT") { Description = "Self-contained EROFS image to write" };
        var blobDir = BlobDirOption();
        var device = DeviceOption();
        var command = new Command("export", "Write any image (e.g. a layered bootstrap + blobs) as one self-contained EROFS file") { image, output, blobDir, device };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var img = ErofsImage.Open(parse.GetValue(image)!, Resolver(parse.GetValue(blobDir), parse.GetValue(device)));
            var result = Rafs.Build.ImageExporter.Export(img, parse.GetValue(output)!, new Rafs.Build.BuildOptions { Uuid = img.SuperBlock.Uuid });
            Console.WriteLine($"{result.OutputPath}: {result.Inodes} inodes, {CliSupport.Bytes(result.OutputBytes)}");
            return 0;
        }));
        return command;
    }

    private static Command Unpack()
    {
        var image = ImageArgument();
        var output = new Argument<string>("DIR") { Description = "Empty or new directory to extract into" };
        var blobDir = BlobDirOption();
        var device = DeviceOption();
        var command = new Command("unpack", "Extract an image with all metadata (owners, modes, times, xattrs, links, devices)") { image, output, blobDir, device };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            using var img = ErofsImage.Open(parse.GetValue(image)!, Resolver(parse.GetValue(blobDir), parse.GetValue(device)));
            long n = Unpacker.Unpack(img, parse.GetValue(output)!);
            Console.WriteLine($"unpacked {n} entries into {Path.GetFullPath(parse.GetValue(output)!)}");
            return 0;
        }));
        return command;
    }
}
