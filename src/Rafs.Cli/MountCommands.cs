using System.CommandLine;
using Rafs.Daemon;

namespace Rafs.Cli;

internal static class MountCommands
{
    public static Command CreateMount()
    {
        var image = new Argument<string>("IMAGE|REF")
        {
            Description = "A local image or bootstrap file (mounted directly), or an image reference served on demand by the daemon: " +
                          "registry host[:port]/repo[:tag|@sha256:…], http(s)://URL of an OCI layout[#tag], or an OCI layout directory[:tag]",
        };
        var mountPoint = new Argument<string>("MNT") { Description = "Existing directory to mount on" };
        var blobDir = new Option<string?>("--blob-dir") { Description = "Local image: directory holding the bootstrap's blobs, named by sha256" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = $"Local image: where blobs are materialised into device files (default {Rafs.Storage.DeviceCache.DefaultPath})" };
        var device = new Option<string[]>("--device") { Description = "Local image: extra device files in table order (images whose slots carry no digest)", AllowMultipleArgumentsPerToken = false };
        var command = new Command("mount", "Mount an image with the kernel's EROFS: a local file directly, a reference on demand through the daemon")
        {
            image, mountPoint, blobDir, cacheDir, device,
        };
        RemoteCommands.AddMountOptions(command, out var mountRemote);
        command.SetAction(parse => CliSupport.Run(() =>
        {
            var what = parse.GetValue(image)!;
            if (!File.Exists(what)) return mountRemote(parse, what, parse.GetValue(mountPoint)!);
            var devices = ImageMounter.Mount(what, parse.GetValue(mountPoint)!, parse.GetValue(blobDir),
                parse.GetValue(cacheDir), parse.GetValue(device), msg => Console.Error.WriteLine($"rafs: {msg}"));
            Console.WriteLine($"mounted {Path.GetFullPath(what)} on {Path.GetFullPath(parse.GetValue(mountPoint)!)}" +
                              (devices.Count > 0 ? $" with {devices.Count} blob(s)" : ""));
            return 0;
        }));
        return command;
    }

    public static Command CreateUmount()
    {
        var mountPoint = new Argument<string>("MNT");
        var command = new Command("umount", "Unmount a Rafs mount (through the daemon when it serves it)") { mountPoint };
        RemoteCommands.AddUmountOptions(command, out var unmountRemote);
        command.SetAction(parse => CliSupport.Run(() =>
        {
            if (!unmountRemote(parse, parse.GetValue(mountPoint)!)) ImageMounter.Unmount(parse.GetValue(mountPoint)!);
            return 0;
        }));
        return command;
    }
}
