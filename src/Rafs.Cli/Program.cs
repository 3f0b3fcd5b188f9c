using System.CommandLine;
using Rafs.Cli;

var root = new RootCommand("Rafs: container and OS images on demand over the kernel's EROFS");
root.Subcommands.Add(BuildCommand.Create());
root.Subcommands.Add(MountCommands.CreateMount());
root.Subcommands.Add(MountCommands.CreateUmount());
root.Subcommands.Add(RemoteCommands.CreatePush());
root.Subcommands.Add(RemoteCommands.CreateDaemon());
root.Subcommands.Add(RemoteCommands.CreateStatus());
root.Subcommands.Add(BlobCommands.Create());
foreach (var command in ReaderCommands.Create()) root.Subcommands.Add(command);
return root.Parse(args).Invoke();
