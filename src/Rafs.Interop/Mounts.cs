using System.Text;

namespace Rafs.Interop;

/// <summary>mount(2)/umount2(2) and the mount table.</summary>
public static unsafe class Mounts
{
    public const ulong MS_RDONLY = 1;
    private const int MNT_DETACH = 2;

    /// <summary>
    /// Calls mount(2) directly: Debian's mount(8) turns a file source into a loop device instead of a
    /// file-backed EROFS mount.
    /// </summary>
    public static void Mount(string source, string target, string fsType, ulong flags, string? data)
    {
        var s = Libc.CString(source);
        var t = Libc.CString(target);
        var f = Libc.CString(fsType);
        var d = data is null ? null : Libc.CString(data);
        fixed (byte* ps = s, pt = t, pf = f, pd = d)
            if (Libc.mount(ps, pt, pf, flags, pd) != 0)
                throw PosixException.FromLastError("mount", $"{source} on {target}", "the kernel log (dmesg | tail) says why");
    }

    public static void Unmount(string target, bool detach = false)
    {
        var t = Libc.CString(target);
        fixed (byte* pt = t)
            if (Libc.umount2(pt, detach ? MNT_DETACH : 0) != 0) throw PosixException.FromLastError("umount", target);
    }

    /// <summary>Unmounts <paramref name="target"/> if it is mounted, lazily (MNT_DETACH) when it is busy.</summary>
    public static void UnmountOrDetach(string target)
    {
        if (!IsMountPoint(target)) return;
        try { Unmount(target); }
        catch (PosixException) { Unmount(target, detach: true); }
    }

    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        if (full.Length == 0) full = "/";
        return MountPoints().Contains(full);
    }

    /// <summary>Mount points from /proc/self/mountinfo (field 5), with the kernel's octal escapes decoded.</summary>
    public static List<string> MountPoints()
    {
        var result = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4) result.Add(Unescape(fields[4]));
        }
        return result;
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\')) return field;
        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                bytes.Add(Convert.ToByte(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}

/// <summary>Host-wide kernel knobs used by benchmarks and tests.</summary>
public static class Kernel
{
    /// <summary>Writes back dirty data and drops the page, dentry and inode caches (root only).</summary>
    public static void DropCaches()
    {
        Libc.sync();
        File.WriteAllText("/proc/sys/vm/drop_caches", "3");
    }
}
