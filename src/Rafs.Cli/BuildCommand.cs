using System.CommandLine;
using Rafs.Build;

namespace Rafs.Cli;

internal static class BuildCommand
{
    public static Command Create()
    {
        var source = new Argument<string>("SRC") { Description = "Directory to build the image from" };
        var output = new Option<string?>("--output", "-o") { Description = "Write one self-contained EROFS image here" };
        var bootstrap = new Option<string?>("--bootstrap") { Description = "Write a metadata-only bootstrap here (data goes to --blob-dir)" };
        var blobDir = new Option<string?>("--blob-dir") { Description = "Directory for content-addressed blobs (with --bootstrap)" };
        var chunkSize = new Option<string>("--chunk-size") { Description = "Chunk size of the blob layout: power of two, 4K..16M", DefaultValueFactory = _ => "1M" };
        var compressor = new Option<string>("--compressor") { Description = "How blob chunks are stored: zstd, lz4 or none", DefaultValueFactory = _ => "zstd" };
        compressor.AcceptOnlyFromAmong("zstd", "lz4", "none");
        var uuid = new Option<string?>("--uuid") { Description = "Filesystem UUID (random by default), for reproducible builds" };
        var timestamp = new Option<long?>("--timestamp") { Description = "Build time in seconds since the epoch (default: SOURCE_DATE_EPOCH or now)" };
        var command = new Command("build", "Build an EROFS image, or a bootstrap + blob, from a directory")
        {
            source, output, bootstrap, blobDir, chunkSize, compressor, uuid, timestamp,
        };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            string? image = parse.GetValue(output), boot = parse.GetValue(bootstrap), blobs = parse.GetValue(blobDir);
            if ((image is null) == (boot is null))
                throw new ArgumentException("give either -o IMAGE (self-contained) or --bootstrap BOOT --blob-dir DIR");
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
                Progress = progress,
                Warn = w => Console.Error.WriteLine($"rafs: warning: {w}"),
            };
            var started = System.Diagnostics.Stopwatch.StartNew();
            var tree = DirectoryScanner.Scan(parse.GetValue(source)!, options.Warn);
            var result = image is not null
                ? ImageBuilder.BuildImage(tree, image, options)
                : ImageBuilder.BuildBootstrap(tree, boot!, blobs!, options);
            progress.Done();
            Console.WriteLine($"{result.OutputPath}: {result.Inodes} inodes, {CliSupport.Bytes(result.OutputBytes)}, data {CliSupport.Bytes(result.DataBytes)} in {started.Elapsed.TotalSeconds:0.00} s");
            if (result.BlobPath is not null)
                Console.WriteLine($"blob sha256:{result.BlobDigest}: {CliSupport.Bytes(result.BlobBytes)} stored, {CliSupport.Bytes(result.BlobDeviceBytes)} uncompressed, " +
                                  $"{result.UniqueChunks} unique of {result.Chunks} chunks ({result.HoleChunks} holes), dedup saved {CliSupport.Bytes(result.DedupSavedBytes)}");
            return 0;
        }));
        return command;
    }
}
