// A Hugging Face checkpoint folder: model.safetensors, or shards listed by model.safetensors.index.json.
// Tensor names resolve to (file, entry); every file is validated when opened.
using System.Text.Json;

namespace InstructTune.Checkpoints;

public sealed class CheckpointFolder : IDisposable
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _where = new(StringComparer.Ordinal);

    public string Directory { get; }
    public IEnumerable<string> Names => _where.Keys;
    public long TotalBytes => _files.Sum(f => new FileInfo(f.Path).Length);

    public CheckpointFolder(string dir)
    {
        Directory = dir;
        try
        {
            string single = Path.Combine(dir, SingleFile), index = Path.Combine(dir, IndexFile);
            // Anything at those names counts as present (a folder or FIFO is then refused by name, not skipped).
            if (Common.FileKind.Of(index) != Common.PathKind.Missing) { Common.FileKind.RequireRegularFile(index, "index"); OpenSharded(index); }
            else if (Common.FileKind.Of(single) != Common.PathKind.Missing) Add(SafetensorsFile.Open(single));
            else throw new FileNotFoundException($"{dir}: neither {SingleFile} nor {IndexFile} found");
        }
        catch { Dispose(); throw; }
    }

    private void OpenSharded(string index)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(index)); }
        catch (JsonException e) { throw new InvalidDataException($"{index}: malformed JSON: {e.Message}", e); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map)
            || map.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{index}: missing object \"weight_map\"");
        var byFile = new Dictionary<string, List<string>>();
        foreach (var p in map.EnumerateObject())
        {
            var file = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! :
                throw new InvalidDataException($"{index}: weight_map.{p.Name} must be a file name");
            if (file.Contains('/') || file.Contains('\\') || file.Contains(".."))
                throw new InvalidDataException($"{index}: weight_map.{p.Name} names \"{file}\" outside the folder");
            if (!byFile.TryGetValue(file, out var list)) byFile[file] = list = [];
            list.Add(p.Name);
        }
        foreach (var (file, names) in byFile)
        {
            var f = SafetensorsFile.Open(Path.Combine(Directory, file));
            Add(f);
            foreach (var n in names)
                if (!f.Contains(n)) throw new InvalidDataException($"{index}: weight_map says \"{n}\" is in {file}, but it is not");
        }
    }

    private void Add(SafetensorsFile f)
    {
        _files.Add(f);
        foreach (var name in f.Tensors.Keys)
        {
            if (_where.ContainsKey(name)) throw new InvalidDataException($"{Directory}: tensor \"{name}\" is in two files");
            _where[name] = f;
        }
    }

    public bool Contains(string name) => _where.ContainsKey(name);

    /// <summary>Set ITUNE_IGNORE_UNEXPECTED_TENSORS=1 to load a checkpoint holding tensors config.json does not imply
    /// (each is then named in a warning, as transformers does); by default they are an error.</summary>
    public const string IgnoreUnexpectedVariable = "ITUNE_IGNORE_UNEXPECTED_TENSORS";

    /// <summary>
    /// Every tensor in the files must be one config.json implies: a checkpoint with two layers read under a config
    /// that says one would otherwise load, score and train with one layer and exit 0. Throws naming the first
    /// unexpected tensors, or (with <see cref="IgnoreUnexpectedVariable"/>) warns through <paramref name="warn"/>.
    /// </summary>
    public void RefuseUnexpected(IReadOnlySet<string> implied, Action<string>? warn = null)
    {
        var unexpected = Names.Where(n => !implied.Contains(n)).Order(StringComparer.Ordinal).ToList();
        if (unexpected.Count == 0) return;
        var (file, _) = Find(unexpected[0]);
        string list = string.Join(", ", unexpected.Take(3).Select(n => $"\"{n}\"")) + (unexpected.Count > 3 ? $" and {unexpected.Count - 3} more" : "");
        string message = $"{file.Path}: {unexpected.Count} tensor(s) that config.json does not imply: {list}";
        if (Environment.GetEnvironmentVariable(IgnoreUnexpectedVariable) == "1")
            (warn ?? (m => Console.Error.WriteLine(m)))($"warning: {message}; ignored ({IgnoreUnexpectedVariable}=1)");
        else
            throw new InvalidDataException($"{message} (does config.json match the weights? set {IgnoreUnexpectedVariable}=1 to ignore them)");
    }

    public (SafetensorsFile File, TensorInfo Info) Find(string name) =>
        _where.TryGetValue(name, out var f) ? (f, f.Info(name))
            : throw new KeyNotFoundException($"{Directory}: checkpoint has no tensor \"{name}\"");

    public float[] ReadF32(string name) => Find(name).File.ReadF32(name);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
