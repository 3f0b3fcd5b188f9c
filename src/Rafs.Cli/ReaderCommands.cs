using System.CommandLine;

namespace Rafs.Cli;

internal static class ReaderCommands
{
    public static IEnumerable<Command> Create() => [];
}
