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
            if (File.Exists(index)) OpenSharded(index);
            else if (File.Exists(single)) Add(SafetensorsFile.Open(single));
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
