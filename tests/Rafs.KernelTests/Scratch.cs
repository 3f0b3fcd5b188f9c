using Rafs.Interop;

namespace Rafs.KernelTests;

/// <summary>
/// A temporary directory on ext4 (/var/tmp: file-backed mounts and fanotify marks need a real filesystem).
/// Dispose unmounts anything still mounted below it, then deletes it.
/// </summary>
public sealed class Scratch : IDisposable
{
    public string Root { get; }

    public Scratch()
    {
        Root = Path.Combine("/var/tmp", $"rafs-tests-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(Root);
    }

    public string PathOf(string name) => Path.Combine(Root, name);

    public string Dir(string name)
    {
        var path = PathOf(name);
        Directory.CreateDirectory(path);
        return path;
    }

    public void Dispose()
    {
        foreach (var mount in Mounts.MountPoints().Where(m => m.StartsWith(Root + "/", StringComparison.Ordinal)).OrderByDescending(m => m.Length))
            Mounts.UnmountOrDetach(mount);
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { /* a lazily detached mount may still hold files; /var/tmp is cleaned eventually */ }
    }
}

/// <summary>A file-backed EROFS mount made with mount(2), unmounted on Dispose.</summary>
public sealed class ErofsMount : IDisposable
{
    public string Path { get; }

    public ErofsMount(string image, string mountPoint, params string[] devices)
    {
        Directory.CreateDirectory(mountPoint);
        var data = devices.Length == 0 ? null : string.Join(',', devices.Select(d => "device=" + System.IO.Path.GetFullPath(d)));
        try
        {
            Mounts.Mount(System.IO.Path.GetFullPath(image), mountPoint, "erofs", Mounts.MS_RDONLY, data);
        }
        catch (PosixException e)
        {
            throw new IOException($"{e.Message}\nkernel log:\n{Tools.Run("dmesg").Stdout.Split('\n').TakeLast(10).Aggregate("", (a, l) => a + l + "\n")}", e);
        }
        Path = mountPoint;
    }

    public void Dispose()
    {
        Mounts.UnmountOrDetach(Path);
    }
}
