using System.Text;
using Rafs.Format;
using Rafs.Interop;

namespace Rafs.Build;

/// <summary>Reads a directory tree's metadata (not its data) into a <see cref="BuildTree"/>.</summary>
public static class DirectoryScanner
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static BuildTree Scan(string sourceRoot, Action<string>? warn = null)
    {
        sourceRoot = Path.GetFullPath(sourceRoot);
        var rootStat = PosixFs.LStat(sourceRoot);
        if (!rootStat.IsDirectory)
            throw new ArgumentException($"{sourceRoot} is not a directory");

        var root = MakeNode(sourceRoot, rootStat, warn);
        root.Parent = root;
        // (dev, ino) → node, so hard links become one inode with several names.
        var hardLinks = new Dictionary<(ulong, ulong), BuildNode>();
        long files = 0, bytes = 0;
        var pending = new Stack<BuildNode>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            var children = new List<BuildEntry>();
            foreach (var path in Directory.EnumerateFileSystemEntries(dir.SourcePath))
            {
                var name = EncodeName(path);
                var st = PosixFs.LStat(path);
                BuildNode node;
                if (!st.IsDirectory && st.Nlink > 1 && hardLinks.TryGetValue((st.Device, st.Inode), out var existing))
                {
                    node = existing;
                }
                else
                {
                    node = MakeNode(path, st, warn);
                    if (!st.IsDirectory && st.Nlink > 1) hardLinks[(st.Device, st.Inode)] = node;
                    if (node.IsRegular) { files++; bytes += node.Size; }
                }
                if (node.IsDirectory)
                {
                    node.Parent = dir;
                    pending.Push(node);
                }
                else
                {
                    node.Links++;
                }
                children.Add(new BuildEntry(name, node));
            }
            children.Sort((a, b) => DirectoryBlocks.CompareNames(a.Name, b.Name));
            dir.Children = children;
        }
        return new BuildTree(root) { FileCount = files, DataBytes = bytes };
    }

    private static byte[] EncodeName(string path)
    {
        var name = Path.GetFileName(path);
        if (name.Contains('\uFFFD'))
            throw new InvalidDataException($"{path}: the file name is not valid UTF-8; rename it to build this tree");
        var bytes = StrictUtf8.GetBytes(name);
        if (bytes.Length > ErofsFormat.NameMaxLength)
            throw new InvalidDataException($"{path}: name is {bytes.Length} bytes, EROFS allows {ErofsFormat.NameMaxLength}");
        return bytes;
    }

    private static BuildNode MakeNode(string path, FileStatus st, Action<string>? warn)
    {
        byte[]? target = null;
        if (st.IsSymlink)
        {
            target = PosixFs.ReadLink(path);
            if (target.Length == 0 || target.Length > ErofsFormat.SymlinkMaxLength)
                throw new InvalidDataException($"{path}: symlink target of {target.Length} bytes cannot be stored");
        }
        int type = st.Mode & UnixMode.TypeMask;
        bool hasData = type is UnixMode.Regular or UnixMode.Symlink;
        bool isDevice = type is UnixMode.CharDevice or UnixMode.BlockDevice;
        return new BuildNode
        {
            SourcePath = path,
            Mode = st.Mode,
            Uid = st.Uid,
            Gid = st.Gid,
            MtimeSeconds = st.MtimeSeconds,
            MtimeNanoseconds = st.MtimeNanoseconds,
            Size = type == UnixMode.Symlink ? target!.Length : hasData ? st.Size : 0,
            RdevMajor = isDevice ? st.RdevMajor : 0,
            RdevMinor = isDevice ? st.RdevMinor : 0,
            LinkTarget = target,
            Xattrs = FilterXattrs(path, PosixFs.ListXattrs(path), warn),
        };
    }

    private static List<KeyValuePair<string, byte[]>> FilterXattrs(string path, List<KeyValuePair<string, byte[]>> xattrs, Action<string>? warn)
    {
        if (xattrs.Count == 0) return xattrs;
        var kept = new List<KeyValuePair<string, byte[]>>(xattrs.Count);
        foreach (var x in xattrs)
        {
            var name = Encoding.UTF8.GetBytes(x.Key);
            if (!XattrPrefix.TrySplit(name, out _, out int prefixLength))
            {
                warn?.Invoke($"{path}: xattr {x.Key} is in a namespace EROFS cannot store; skipped");
                continue;
            }
            if (name.Length - prefixLength > byte.MaxValue || x.Value.Length > ushort.MaxValue)
                throw new InvalidDataException($"{path}: xattr {x.Key} is too large for EROFS (name suffix ≤ 255 bytes, value ≤ 65535 bytes)");
            kept.Add(x);
        }
        return kept;
    }
}
