using System.CommandLine;
using Rafs.Storage;

namespace Rafs.Cli;

/// <summary>`rafs blob …`: work on stored blobs directly.</summary>
internal static class BlobCommands
{
    public static Command Create()
    {
        var blob = new Argument<string>("BLOB") { Description = "Stored blob (named by its sha256 when made by rafs build)" };
        var output = new Argument<string>("OUT") { Description = "Device file to write (the uncompressed layout EROFS reads)" };
        var materialize = new Command("materialize", "Decode a stored blob into its device layout, verifying the blob digest and every chunk") { blob, output };
        materialize.SetAction(parse => CliSupport.Run(() =>
        {
            var path = parse.GetValue(blob)!;
            BlobDigest? expected = BlobDigest.TryParse(Path.GetFileName(path), out var named) ? named : null;
            var table = BlobMaterializer.Materialize(path, parse.GetValue(output)!, expected);
            Console.WriteLine($"{parse.GetValue(output)}: {table.Chunks.Count} chunks, {CliSupport.Bytes(table.Footer.DeviceSize)} device layout from {CliSupport.Bytes(new FileInfo(path).Length)} stored" +
                              (expected is null ? " (file name is not a digest: blob digest not checked)" : ""));
            return 0;
        }));

        var info = new Command("inspect", "Show a stored blob's chunk table summary") { blob };
        info.SetAction(parse => CliSupport.Run(() =>
        {
            var path = parse.GetValue(blob)!;
            using var file = File.OpenHandle(path);
            var table = BlobTable.Read(file, path);
            var byCompression = table.Chunks.GroupBy(c => c.Compression).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}");
            Console.WriteLine($"{path}: format v{table.Footer.Version}, {table.Chunks.Count} chunks ({string.Join(", ", byCompression)}), " +
                              $"{CliSupport.Bytes(table.StoredChunkBytes)} stored for {CliSupport.Bytes(table.UncompressedBytes)} of data, device layout {CliSupport.Bytes(table.Footer.DeviceSize)}");
            return 0;
        }));
        return new Command("blob", "Stored blob tools") { materialize, info };
    }
}
