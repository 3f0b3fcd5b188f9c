using System.Formats.Tar;
using System.Globalization;
using System.Text;
using Rafs.Interop;

namespace Rafs.KernelTests;

/// <summary>
/// Layered images against the kernel's own overlayfs: each layer is a directory in overlay form (whiteouts are
/// 0/0 char devices, opaque dirs carry trusted.overlay.opaque=y), mounted as lowerdirs; the same layers, written
/// as OCI tars, are built by `rafs build --layer` and mounted. The two views must be identical.
/// </summary>
[Trait("Category", "Layers")]
public sealed class LayerTests
{
    private const int Chr = 0x2000;

    [Fact]
    public void MergedImageEqualsOverlayfs()
    {
        using var scratch = new Scratch();
        var random = new Random(5);
        byte[] Bytes(int n) { var b = new byte[n]; random.NextBytes(b); return b; }
        void Write(string dir, string rel, byte[] data) { var p = Path.Combine(dir, rel); Directory.CreateDirectory(Path.GetDirectoryName(p)!); File.WriteAllBytes(p, data); }
        void Whiteout(string dir, string rel) { var p = Path.Combine(dir, rel); Directory.CreateDirectory(Path.GetDirectoryName(p)!); PosixFs.MakeNode(p, Chr, 0, 0); }
        void Opaque(string dir, string rel) { var p = Path.Combine(dir, rel); Directory.CreateDirectory(p); PosixFs.SetXattr(p, "trusted.overlay.opaque", "y"u8); }

        var shared = Bytes(3 << 20);
        var l1 = scratch.Dir("l1");
        Write(l1, "etc/config", "v1"u8.ToArray());
        Write(l1, "etc/removed", "gone later"u8.ToArray());
        Write(l1, "usr/lib/big.so", shared);
        Write(l1, "usr/lib/keep", Bytes(10_000));
        Write(l1, "opaque/old-1", "hidden"u8.ToArray());
        Write(l1, "opaque/sub/old-2", "hidden"u8.ToArray());
        Write(l1, "becomes-dir", "file first"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(l1, "becomes-file/inner"));
        Write(l1, "hard/one", "linked"u8.ToArray());
        PosixFs.Link(Path.Combine(l1, "hard/one"), Path.Combine(l1, "hard/two"));
        PosixFs.Symlink("../usr/lib/keep"u8, Path.Combine(l1, "etc/link"));
        PosixFs.MakeNode(Path.Combine(l1, "etc/null"), Chr | 0x1B6, 1, 3);
        PosixFs.SetXattr(Path.Combine(l1, "etc/config"), "user.origin", "layer1"u8);
        PosixFs.SetTimes(Path.Combine(l1, "etc/config"), 1234567890, 987654321);
        PosixFs.Chmod(Path.Combine(l1, "usr/lib/keep"), 0x9ED);

        var l2 = scratch.Dir("l2");
        Write(l2, "etc/config", "v2"u8.ToArray());
        PosixFs.SetTimes(Path.Combine(l2, "etc/config"), -100, 0);
        Whiteout(l2, "etc/removed");
        Opaque(l2, "opaque");
        Write(l2, "opaque/new", "visible"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(l2, "becomes-dir"));
        Write(l2, "becomes-dir/child", "now a dir"u8.ToArray());
        Write(l2, "becomes-file", "now a file"u8.ToArray());
        Write(l2, "usr/lib/big-copy.so", shared);
        PosixFs.LChown(Path.Combine(l2, "usr/lib/big-copy.so"), 70000, 70000);

        var l3 = scratch.Dir("l3");
        // (Whiting out one name of a hard-link group would make overlayfs report the lower inode's stale nlink.)
        Whiteout(l3, "etc/null");
        Write(l3, "usr/share/doc", Bytes(5000));
        PosixFs.SetXattr(Path.Combine(l3, "usr/share/doc"), "trusted.mark", "t"u8);
        Write(l3, "opaque/new", "replaced again"u8.ToArray());

        string[] layers = [l1, l2, l3];
        // .NET's TarWriter keeps mtimes to 100 ns, so the layers use multiples of that.
        foreach (var layer in layers)
            foreach (var f in Directory.EnumerateFileSystemEntries(layer, "*", SearchOption.AllDirectories).Where(f => !File.GetAttributes(f).HasFlag(FileAttributes.Directory)))
                if (PosixFs.LStat(f).MtimeSeconds >= 0) PosixFs.SetTimes(f, 1700000000 + f.Length, (uint)(f.Length * 100));
        foreach (var dir in Directory.EnumerateDirectories(scratch.Root, "*", SearchOption.AllDirectories).Append(l1).Append(l2).Append(l3).OrderByDescending(d => d.Length))
            PosixFs.SetTimes(dir, 1600000000 + dir.Length, 0);

        // Plain, gzip and zstd layers: the importer tells them apart by content.
        var tars = layers.Select((dir, i) => WriteOciTar(dir, scratch.PathOf($"layer{i}.tar" + (i switch { 1 => ".gz", 2 => ".zst", _ => "" })),
            gzip: i == 1, zstd: i == 2)).ToList();

        var overlay = scratch.Dir("overlay");
        Mounts.Mount("overlay", overlay, "overlay", Mounts.MS_RDONLY, "lowerdir=" + string.Join(':', layers.Reverse()));
        try
        {
            var boot = scratch.PathOf("boot");
            var blobs = scratch.PathOf("blobs");
            var build = RafsCli.Ok(["build", .. tars.SelectMany(t => new[] { "--layer", t }), "--bootstrap", boot, "--blob-dir", blobs, "--chunk-size", "1M"]);
            // One blob per layer, in layer order in the device table; layer 2 re-adds layer 1's 3 MiB file,
            // which must not be stored again.
            using var inspect = System.Text.Json.JsonDocument.Parse(RafsCli.Ok("inspect", boot, "--json").Stdout);
            var order = inspect.RootElement.GetProperty("devices").EnumerateArray().Select(d => d.GetProperty("tag").GetString()!).ToList();
            Assert.Equal(3, order.Count);
            Assert.Equal(order.Order(), Directory.GetFiles(blobs).Select(f => Path.GetFileName(f)!).Order());
            long[] sizes = order.Select(d => new FileInfo(Path.Combine(blobs, d)).Length).ToArray();
            Assert.True(sizes[0] > 3 << 20, build.Stdout);
            Assert.True(sizes[1] < 100_000, $"layer 2 blob is {sizes[1]} bytes: the duplicate file was stored again");

            var mnt = scratch.Dir("mnt");
            RafsCli.Ok("mount", boot, mnt, "--blob-dir", blobs, "--cache-dir", scratch.PathOf("cache"));
            try
            {
                TreeComparer.AssertSame(overlay, mnt);
                Assert.Equal("replaced again", File.ReadAllText(Path.Combine(mnt, "opaque/new")));
                Assert.False(File.Exists(Path.Combine(mnt, "etc/removed")));
            }
            finally
            {
                RafsCli.Ok("umount", mnt);
            }
            RafsCli.Ok("check", boot, "--blob-dir", blobs);

            // Offline form: one self-contained EROFS file with the same tree.
            var exported = scratch.PathOf("exported.erofs");
            RafsCli.Ok("export", boot, exported, "--blob-dir", blobs);
            using (var mount = new ErofsMount(exported, scratch.PathOf("exported-mnt")))
                TreeComparer.AssertSame(overlay, mount.Path);
            var fsck = Tools.Run("fsck.erofs", exported);
            Assert.True(fsck.Exit == 0, fsck.All);
        }
        finally
        {
            Mounts.Unmount(overlay);
        }
    }

    [Fact]
    public void OciImageLayoutIsReadByTag()
    {
        using var scratch = new Scratch();
        var l1 = scratch.Dir("l1");
        File.WriteAllText(Path.Combine(l1, "base"), "base layer");
        var l2 = scratch.Dir("l2");
        File.WriteAllText(Path.Combine(l2, "app"), "app layer");
        PosixFs.MakeNode(Path.Combine(l2, "base"), Chr, 0, 0);   // whiteout
        var layout = scratch.Dir("layout");
        var blobDir = Directory.CreateDirectory(Path.Combine(layout, "blobs", "sha256")).FullName;
        string AddBlob(byte[] data)
        {
            var hex = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));
            File.WriteAllBytes(Path.Combine(blobDir, hex), data);
            return "sha256:" + hex;
        }
        var layerDigests = new[] { l1, l2 }.Select((dir, i) => AddBlob(File.ReadAllBytes(WriteOciTar(dir, scratch.PathOf($"t{i}.tar.gz"), gzip: true)))).ToList();
        var config = AddBlob("{}"u8.ToArray());
        var manifest = AddBlob(Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{config}\",\"size\":2}}," +
            "\"layers\":[" + string.Join(',', layerDigests.Select(d => $"{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{d}\",\"size\":1}}")) + "]}"));
        File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Combine(layout, "index.json"),
            "{\"schemaVersion\":2,\"manifests\":[" +
            $"{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{manifest}\",\"size\":1,\"annotations\":{{\"org.opencontainers.image.ref.name\":\"v1\"}}}}]}}");

        var boot = scratch.PathOf("boot");
        var blobs = scratch.PathOf("blobs");
        RafsCli.Ok("build", "--oci-layout", layout + ":v1", "--bootstrap", boot, "--blob-dir", blobs);
        Assert.Equal("app layer", RafsCli.Ok("cat", boot, "/app", "--blob-dir", blobs).Stdout);
        Assert.NotEqual(0, RafsCli.Run("cat", boot, "/base", "--blob-dir", blobs).Exit);
        var wrongTag = RafsCli.Run("build", "--oci-layout", layout + ":v2", "--bootstrap", boot, "--blob-dir", blobs);
        Assert.NotEqual(0, wrongTag.Exit);
        Assert.Contains("v1", wrongTag.Stderr);

        File.WriteAllBytes(Path.Combine(blobDir, layerDigests[0]["sha256:".Length..]), "tampered"u8.ToArray());
        var tampered = RafsCli.Run("build", "--oci-layout", layout + ":v1", "--bootstrap", boot, "--blob-dir", blobs);
        Assert.NotEqual(0, tampered.Exit);
        Assert.Contains("corrupt", tampered.Stderr);
    }

    /// <summary>Writes an overlay-form layer directory as an OCI layer tar (PAX, whiteouts as .wh. entries).</summary>
    internal static string WriteOciTar(string layerDir, string tarPath, bool gzip, bool zstd = false)
    {
        using var file = File.Create(tarPath);
        using Stream stream = gzip ? new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest)
            : zstd ? new ZstdSharp.CompressionStream(file) : file;
        using var writer = new TarWriter(stream, TarEntryFormat.Pax);
        var seenInodes = new Dictionary<ulong, string>();
        var pending = new Stack<string>();
        pending.Push(layerDir);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            var rel = Path.GetRelativePath(layerDir, dir);
            rel = rel == "." ? "./" : "./" + rel + "/";
            writer.WriteEntry(Entry(dir, TarEntryType.Directory, rel));
            if (PosixFs.ListXattrs(dir).Any(x => x.Key == "trusted.overlay.opaque"))
                writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, rel + ".wh..wh..opq"));
            foreach (var path in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
            {
                var st = PosixFs.LStat(path);
                var name = "./" + Path.GetRelativePath(layerDir, path);
                if (st.IsDirectory) { pending.Push(path); continue; }
                if ((st.Mode & 0xF000) == Chr && st.RdevMajor == 0 && st.RdevMinor == 0)
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, Path.GetDirectoryName(name) + "/.wh." + Path.GetFileName(name)));
                    continue;
                }
                if (!st.IsDirectory && st.Nlink > 1 && seenInodes.TryGetValue(st.Inode, out var first))
                {
                    writer.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = first });
                    continue;
                }
                seenInodes[st.Inode] = name;
                var type = (st.Mode & 0xF000) switch
                {
                    0x8000 => TarEntryType.RegularFile, 0xA000 => TarEntryType.SymbolicLink, 0x2000 => TarEntryType.CharacterDevice,
                    0x6000 => TarEntryType.BlockDevice, 0x1000 => TarEntryType.Fifo, _ => throw new InvalidOperationException(path),
                };
                var entry = Entry(path, type, name);
                if (type == TarEntryType.RegularFile) entry.DataStream = File.OpenRead(path);
                if (type == TarEntryType.SymbolicLink) entry.LinkName = Encoding.UTF8.GetString(PosixFs.ReadLink(path));
                if (type is TarEntryType.CharacterDevice or TarEntryType.BlockDevice) { entry.DeviceMajor = (int)st.RdevMajor; entry.DeviceMinor = (int)st.RdevMinor; }
                writer.WriteEntry(entry);
                entry.DataStream?.Dispose();
            }
        }
        return tarPath;
    }

    private static PaxTarEntry Entry(string path, TarEntryType type, string name)
    {
        var st = PosixFs.LStat(path);
        var attributes = new Dictionary<string, string>
        {
            ["mtime"] = FormatTime(st.MtimeSeconds, st.MtimeNanoseconds),
        };
        foreach (var (key, value) in PosixFs.ListXattrs(path))
            if (!key.StartsWith("trusted.overlay.", StringComparison.Ordinal))
                attributes["SCHILY.xattr." + key] = Encoding.UTF8.GetString(value);
        return new PaxTarEntry(type, name, attributes)
        {
            Mode = (UnixFileMode)(st.Mode & 0xFFF),
            Uid = (int)st.Uid,
            Gid = (int)st.Gid,
            ModificationTime = DateTimeOffset.FromUnixTimeSeconds(st.MtimeSeconds).AddTicks(st.MtimeNanoseconds / 100),
        };
    }

    private static string FormatTime(long seconds, uint nanoseconds)
    {
        if (seconds < 0 && nanoseconds > 0) return $"-{-(seconds + 1)}.{1_000_000_000 - nanoseconds:D9}";
        return string.Create(CultureInfo.InvariantCulture, $"{seconds}.{nanoseconds:D9}");
    }
}
