using System.CommandLine;
using Rafs.Build;

namespace Rafs.Cli;

internal static class BuildCommand
{
    public static Command Create()
    {
        var source = new Argument<string?>("SRC") { Description = "Directory to build the image from", Arity = ArgumentArity.ZeroOrOne };
        var layer = new Option<string[]>("--layer") { Description = "OCI layer tar (plain, gzip or zstd), lowest first; repeat for each layer" };
        var ociLayout = new Option<string?>("--oci-layout") { Description = "OCI image layout directory, DIR or DIR:TAG" };
        var output = new Option<string?>("--output", "-o") { Description = "Write one self-contained EROFS image here" };
        var bootstrap = new Option<string?>("--bootstrap") { Description = "Write a metadata-only bootstrap here (data goes to --blob-dir)" };
        var blobDir = new Option<string?>("--blob-dir") { Description = "Directory for content-addressed blobs (with --bootstrap)" };
        var chunkSize = new Option<string>("--chunk-size") { Description = "Chunk size of the blob layout: power of two, 4K..16M", DefaultValueFactory = _ => "1M" };
        var compressor = new Option<string>("--compressor") { Description = "How blob chunks are stored: zstd, lz4 or none", DefaultValueFactory = _ => "zstd" };
        compressor.AcceptOnlyFromAmong("zstd", "lz4", "none");
        var chunkDict = new Option<string[]>("--chunk-dict") { Description = "Bootstrap of an earlier image (blobs in --blob-dir) whose chunks are referenced instead of stored again; repeatable" };
        var uuid = new Option<string?>("--uuid") { Description = "Filesystem UUID (random by default), for reproducible builds" };
        var timestamp = new Option<long?>("--timestamp") { Description = "Build time in seconds since the epoch (default: SOURCE_DATE_EPOCH or now)" };
        var command = new Command("build", "Build an EROFS image, or a bootstrap + blob, from a directory")
        {
            source, layer, ociLayout, output, bootstrap, blobDir, chunkSize, compressor, chunkDict, uuid, timestamp,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            string? image = parse.GetValue(output), boot = parse.GetValue(bootstrap), blobs = parse.GetValue(blobDir);
            if ((image is null) == (boot is null))
                throw new ArgumentException("give either -o IMAGE (self-contained) or --bootstrap BOOT --blob-dir DIR");
            if (parse.GetValue(chunkDict) is { Length: > 0 } && boot is null)
                throw new ArgumentException("--chunk-dict needs the bootstrap + blob layout (--bootstrap, --blob-dir)");
            if (boot is not null && blobs is null)
                throw new ArgumentException("--bootstrap needs --blob-dir DIR for the data blob");
            var progress = new CliSupport.ConsoleProgress();
            var options = new BuildOptions
            {
                Uuid = parse.GetValue(uuid) is { } u ? Guid.Parse(u) : null,
                Timestamp = parse.GetValue(timestamp),
                ChunkSizeBits = BuildOptions.ParseChunkSize(CliSupport.ParseSize(parse.GetValue(chunkSize)!)),
                Compression = parse.GetValue(compressor) switch
                {
                    "lz4" => Rafs.Storage.ChunkCompression.Lz4,
                    "none" => Rafs.Storage.ChunkCompression.None,
                    _ => Rafs.Storage.ChunkCompression.Zstd,
                },
                ChunkDictionaries = parse.GetValue(chunkDict) ?? [],
                Progress = progress,
                Warn = w => Console.Error.WriteLine($"rafs: warning: {w}"),
            };
            var started = System.Diagnostics.Stopwatch.StartNew();
            var layers = parse.GetValue(layer) is { Length: > 0 } given ? given.ToList()
                : parse.GetValue(ociLayout) is { } layout ? Rafs.Build.Layers.OciLayout.LayerPaths(layout) : null;
            if ((layers is null) == (parse.GetValue(source) is null))
                throw new ArgumentException("give one input: a source directory SRC, --layer TAR (repeatable) or --oci-layout DIR[:TAG]");
            BuildResult result;
            if (layers is not null)
            {
                if (boot is null) throw new ArgumentException("layered images are built as --bootstrap BOOT --blob-dir DIR (one blob per layer)");
                result = ImageBuilder.BuildFromLayers(layers, boot, blobs!, options);
            }
            else
            {
                var tree = DirectoryScanner.Scan(parse.GetValue(source)!, options.Warn);
                result = image is not null
                    ? ImageBuilder.BuildImage(tree, image, options)
                    : ImageBuilder.BuildBootstrap(tree, boot!, blobs!, options);
            }
            progress.Done();
            Console.WriteLine($"{result.OutputPath}: {result.Inodes} inodes, {CliSupport.Bytes(result.OutputBytes)}, data {CliSupport.Bytes(result.DataBytes)} in {started.Elapsed.TotalSeconds:0.00} s");
            if (result.BlobPath is not null)
                Console.WriteLine($"{Math.Max(1, result.Blobs.Count)} blob(s) {string.Join(", ", result.Blobs.Count > 0 ? result.Blobs : [result.BlobDigest!])}: {CliSupport.Bytes(result.BlobBytes)} stored, {CliSupport.Bytes(result.BlobDeviceBytes)} uncompressed, " +
                                  $"{result.UniqueChunks} unique of {result.Chunks} chunks ({result.HoleChunks} holes), dedup saved {CliSupport.Bytes(result.DedupSavedBytes)}");
            return 0;
        }));
        return command;
    }
}
