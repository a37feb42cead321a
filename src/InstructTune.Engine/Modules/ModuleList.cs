// An ordered list of child modules named "0", "1", … (Hugging Face's nn.ModuleList naming: model.layers.3.…).
namespace InstructTune.Engine.Modules;

public sealed class ModuleList<T> : Module where T : Module
{
    private readonly int count;

    public ModuleList(IEnumerable<T> items)
    {
        foreach (var m in items) RegisterModule((count++).ToString(System.Globalization.CultureInfo.InvariantCulture), m);
    }

    public int Count => count;
    public T this[int i] => (T)Child(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
