using System.Text;
using Rafs.Format;

namespace Rafs.Image;

/// <summary>One name in the image: its path ("/" for the root), the inode, and the directory it is in.</summary>
public readonly record struct WalkEntry(string Path, byte[] Name, ErofsInode Inode, ulong ParentNid);

/// <summary>Depth-first walk of every name in an image, refusing directory loops.</summary>
public static class ImageWalker
{
    public static IEnumerable<WalkEntry> Walk(ErofsImage image)
    {
        var root = image.RootInode;
        yield return new WalkEntry("/", [], root, root.Nid);
        var visited = new HashSet<ulong> { root.Nid };
        var pending = new Stack<(string Path, ErofsInode Dir)>();
        pending.Push(("", root));
        while (pending.Count > 0)
        {
            var (path, dir) = pending.Pop();
            var subdirs = new List<(string, ErofsInode)>();
            foreach (var entry in image.ReadDirectory(dir))
            {
                if (IsDotOrDotDot(entry.Name)) continue;
                var childPath = path + "/" + DecodeName(entry.Name, image, dir);
                var inode = image.ReadInode(entry.Nid);
                if (inode.IsDirectory)
                {
                    if (!visited.Add(inode.Nid))
                        throw new ImageCorruptException($"{image.DisplayName}: directory loop at {childPath} (nid {inode.Nid} seen before)");
                    subdirs.Add((childPath, inode));
                }
                yield return new WalkEntry(childPath, entry.Name, inode, dir.Nid);
            }
            for (int i = subdirs.Count - 1; i >= 0; i--) pending.Push(subdirs[i]);
        }
    }

    public static bool IsDotOrDotDot(ReadOnlySpan<byte> name) => name.SequenceEqual("."u8) || name.SequenceEqual(".."u8);

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static string DecodeName(byte[] name, ErofsImage image, ErofsInode dir)
    {
        try
        {
            return StrictUtf8.GetString(name);
        }
        catch (DecoderFallbackException)
        {
            throw new ImageUnsupportedException($"{image.DisplayName}: directory nid {dir.Nid} has a name that is not UTF-8 ({Convert.ToHexString(name)})");
        }
    }

    public static ErofsFileType TypeOf(ErofsInode inode) => UnixMode.ToFileType(inode.Mode);
}
