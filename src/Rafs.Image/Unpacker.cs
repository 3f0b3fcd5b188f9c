using Rafs.Format;
using Rafs.Interop;

namespace Rafs.Image;

/// <summary>
/// Extracts an image to a directory with all metadata: owners, modes (incl. setuid/setgid/sticky), ns mtimes,
/// xattrs, device numbers, hard links; regular files are written sparse where the image has holes.
/// </summary>
public static class Unpacker
{
    public static long Unpack(ErofsImage image, string outputDirectory, IProgress<long>? progress = null)
    {
        outputDirectory = Path.GetFullPath(outputDirectory);
        if (Directory.Exists(outputDirectory) && Directory.EnumerateFileSystemEntries(outputDirectory).Any())
            throw new IOException($"{outputDirectory} is not empty: unpack needs an empty or new directory");
        Directory.CreateDirectory(outputDirectory);
        var firstPathOfNid = new Dictionary<ulong, string>();
        var directories = new List<(string Path, ErofsInode Inode)>();
        var buffer = new byte[1 << 20];
        long files = 0;
        foreach (var entry in ImageWalker.Walk(image))
        {
            var inode = entry.Inode;
            var target = entry.Path == "/" ? outputDirectory : outputDirectory + entry.Path;
            if (!inode.IsDirectory && firstPathOfNid.TryGetValue(inode.Nid, out var first))
            {
                PosixFs.Link(first, target);
                continue;
            }
            switch (inode.Type)
            {
                case UnixMode.Directory:
                    Directory.CreateDirectory(target);
                    directories.Add((target, inode));
                    break;
                case UnixMode.Regular:
                    WriteFile(image, inode, target, buffer);
                    break;
                case UnixMode.Symlink:
                    PosixFs.Symlink(image.ReadSymlink(inode), target);
                    break;
                default:
                    PosixFs.MakeNode(target, inode.Mode, inode.RdevMajor, inode.RdevMinor);
                    break;
            }
            if (!inode.IsDirectory)
            {
                firstPathOfNid[inode.Nid] = target;
                ApplyMetadata(image, inode, target);
            }
            files++;
            progress?.Report(files);
        }
        // Directories last and deepest first: creating entries would otherwise change their mtimes.
        for (int i = directories.Count - 1; i >= 0; i--)
            ApplyMetadata(image, directories[i].Inode, directories[i].Path);
        return files;
    }

    private static void WriteFile(ErofsImage image, ErofsInode inode, string target, byte[] buffer)
    {
        using var file = File.OpenHandle(target, FileMode.CreateNew, FileAccess.Write);
        foreach (var extent in image.MapExtents(inode))
        {
            if (extent.IsHole) continue; // left as a hole: SetLength below makes the file its full size
            var source = image.SourceOf(extent.Device, inode);
            for (long done = 0; done < extent.Length;)
            {
                int n = (int)Math.Min(buffer.Length, extent.Length - done);
                source.ReadExactly(extent.Physical + done, buffer.AsSpan(0, n));
                RandomAccess.Write(file, buffer.AsSpan(0, n), extent.Logical + done);
                done += n;
            }
        }
        RandomAccess.SetLength(file, inode.Size);
    }

    private static void ApplyMetadata(ErofsImage image, ErofsInode inode, string target)
    {
        PosixFs.LChown(target, inode.Disk.Uid, inode.Disk.Gid);
        foreach (var (name, value) in image.ReadXattrs(inode))
            PosixFs.SetXattr(target, name, value);
        // chmod after chown (which clears setuid/setgid); symlinks have no mode of their own on Linux.
        if (!inode.IsSymlink) PosixFs.Chmod(target, inode.Mode);
        PosixFs.SetTimes(target, inode.Disk.Mtime, inode.Disk.MtimeNsec);
    }
}
