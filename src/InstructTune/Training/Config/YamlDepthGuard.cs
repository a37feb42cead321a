using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace InstructTune.Training.Config;

/// <summary>
/// Refuses YAML nested deeper than <see cref="MaxDepth"/> before it is loaded: YamlDotNet's representation model
/// builds nodes recursively, so 50,000 nested '[' or mappings overflow the stack (an uncatchable crash). The check
/// streams parser events (no recursion) and stops at the first node past the limit, naming its line.
/// </summary>
public static class YamlDepthGuard
{
    public const int MaxDepth = 64;

    /// <summary>A config file is small: larger than this is refused before it is read.</summary>
    public const long MaxFileBytes = 16L << 20;

    /// <summary>Reads a YAML config file after checking it is a regular file of at most <see cref="MaxFileBytes"/>,
    /// and checks its depth.</summary>
    public static string ReadFile(string path)
    {
        Common.FileKind.RequireRegularFile(path, "config");
        long size = new FileInfo(path).Length;
        if (size > MaxFileBytes)
            throw new ConfigException($"{path}: {size:N0} bytes is too large for a config file (limit {MaxFileBytes >> 20} MB)");
        var text = File.ReadAllText(path);
        Check(text, path);
        return text;
    }

    /// <summary>Throws a <see cref="ConfigException"/> naming <paramref name="source"/> and the line when too deep or malformed.</summary>
    public static void Check(string yaml, string source)
    {
        var parser = new Parser(new StringReader(yaml));
        int depth = 0;
        try
        {
            while (parser.MoveNext())
            {
                switch (parser.Current)
                {
                    case MappingStart or SequenceStart:
                        if (++depth > MaxDepth)
                            throw new ConfigException($"{source}:{parser.Current!.Start.Line}: YAML nested deeper than {MaxDepth} levels");
                        break;
                    case MappingEnd or SequenceEnd: depth--; break;
                }
            }
        }
        catch (YamlException e)
        {
            throw new ConfigException($"{source}:{e.Start.Line}:{e.Start.Column}: malformed YAML: {e.InnerException?.Message ?? e.Message}");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            // YamlDotNet's parser reports some malformed documents (found by the fuzz properties) this way.
            throw new ConfigException($"{source}:{parser.Current?.Start.Line ?? 0}: malformed YAML");
        }
    }
}
