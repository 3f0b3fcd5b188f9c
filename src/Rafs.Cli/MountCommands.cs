using System.CommandLine;
using Rafs.Daemon;

namespace Rafs.Cli;

internal static class MountCommands
{
    public static Command CreateMount()
    {
        var image = new Argument<string>("IMAGE") { Description = "Self-contained image or bootstrap" };
        var mountPoint = new Argument<string>("MNT") { Description = "Existing directory to mount on" };
        var blobDir = new Option<string?>("--blob-dir") { Description = "Directory holding the bootstrap's blobs, named by sha256" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = $"Where blobs are materialised into device files (default {Rafs.Storage.DeviceCache.DefaultPath})" };
        var device = new Option<string[]>("--device") { Description = "Extra device files in table order (images whose slots carry no digest)", AllowMultipleArgumentsPerToken = false };
        var command = new Command("mount", "Mount an image with the kernel's EROFS (file-backed, read-only)") { image, mountPoint, blobDir, cacheDir, device };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var devices = ImageMounter.Mount(parse.GetValue(image)!, parse.GetValue(mountPoint)!, parse.GetValue(blobDir),
                parse.GetValue(cacheDir), parse.GetValue(device), msg => Console.Error.WriteLine($"rafs: {msg}"));
            Console.WriteLine($"mounted {Path.GetFullPath(parse.GetValue(image)!)} on {Path.GetFullPath(parse.GetValue(mountPoint)!)}" +
                              (devices.Count > 0 ? $" with {devices.Count} blob(s)" : ""));
            return 0;
        }));
        return command;
    }

    public static Command CreateUmount()
    {
        var mountPoint = new Argument<string>("MNT");
        var command = new Command("umount", "Unmount a Rafs mount") { mountPoint };
        command.SetAction(parse => CliSupport.Run(() =>
        {
            ImageMounter.Unmount(parse.GetValue(mountPoint)!);
            return 0;
        }));
        return command;
    }
}
