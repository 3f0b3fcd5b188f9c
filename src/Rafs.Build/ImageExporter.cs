using Rafs.Image;

namespace Rafs.Build;

/// <summary>
/// Turns any readable image (layered bootstrap + blobs included) into one self-contained EROFS file for offline use.
/// It unpacks into a scratch directory beside the output and builds from there: simple, exact (the unpacker and
/// builder keep every attribute), and bounded in memory; it needs root and the tree's size in free disk.
/// </summary>
public static class ImageExporter
{
    public static BuildResult Export(ErofsImage image, string outputPath, BuildOptions options)
    {
        outputPath = Path.GetFullPath(outputPath);
        var scratch = Path.Combine(Path.GetDirectoryName(outputPath)!, $".{Path.GetFileName(outputPath)}.export-{Guid.NewGuid():N}");
        try
        {
            Unpacker.Unpack(image, scratch);
            var tree = DirectoryScanner.Scan(scratch, options.Warn);
            return ImageBuilder.BuildImage(tree, outputPath, options with { Timestamp = options.Timestamp ?? (long)image.SuperBlock.BuildTime });
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }
}
