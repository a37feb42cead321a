using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.MultiTurn;

namespace InstructTune.Evaluation.Suites;

/// <summary>
/// The small suite <c>itune eval model --suite builtin</c> runs: instructions at the three complexity levels with
/// checkable constraints, robustness tasks, a generalization split with structurally distinct held-out tasks, and
/// conversations whose later turns depend on earlier ones. Small enough for a CPU model in minutes; written here
/// (not copied from a benchmark) so it can ship with the tool.
/// </summary>
public static class BuiltinSuite
{
    private static InstructionItem I(string id, string text, params string[] refs) => new(id, text, refs);

    public static EvalSuite Create() => new()
    {
        Name = "builtin",
        Instructions =
        [
            I("s-capital", "What is the capital of France? Answer in at most 5 words.", "Paris", "The capital is Paris."),
            I("s-translate", "Translate 'good morning' into Spanish.", "buenos días"),
            I("s-list", "List 3 primary colours as a bullet list.", "- red\n- blue\n- yellow"),
            I("s-json", "Give the boiling point of water in Celsius as a JSON object with the key \"celsius\".", "{\"celsius\": 100}"),
            I("s-upper", "Write the word hello in all capital letters.", "HELLO"),
            I("s-avoid", "Describe the sun in one sentence. Do not use the word hot.", "The sun is the star at the centre of our solar system."),
            I("c-parity", "If 14 is even, answer \"even\"; otherwise answer \"odd\".", "even"),
            I("c-weather", "If it is raining, recommend an umbrella; otherwise recommend sunglasses. It is raining.", "Take an umbrella."),
            I("c-unless", "Reply with the word yes unless the number 7 is greater than 10.", "yes"),
            I("c-grade", "Given a score of 85, say pass if the score is at least 50, otherwise say fail.", "pass"),
            I("m-recipe", "First boil the water, then add the pasta, finally drain it. Write these steps as a numbered list.",
                "1. Boil the water.\n2. Add the pasta.\n3. Drain it."),
            I("m-math", "Add 4 and 5, then multiply the result by 2, and finally state the answer.",
                "Adding 4 and 5 gives 9; multiplying by 2 gives 18. The answer is 18."),
            I("m-email", "Write a short email to Alice Smith: first greet her, then ask about the meeting, finally thank her. Use at most 60 words.",
                "Greetings, Alice! I hope you are well. How did the meeting go? Thank you, Bob"),
            I("m-plan", "1. Name a fruit.\n2. Give its colour.\n3. Say one country where it grows.",
                "1. Fruit: banana\n2. Colour: yellow\n3. Country: Ecuador"),
        ],
        Robustness =
        [
            new("r-capital", "Name the capital of Japan in one word.", References: ["Tokyo"]),
            new("r-list", "List 3 animals as a bullet list."),
            new("r-summary", "Summarize in at most 10 words: The meeting was moved from Monday to Wednesday because the room was booked.",
                References: ["The meeting moved to Wednesday because the room was booked."]),
        ],
        Generalization = new SuiteGeneralization(
            Train:
            [
                .. Pairs("upper", "Rewrite the input in uppercase.", ("cat", "CAT"), ("red door", "RED DOOR"), ("sun", "SUN"), ("blue sky", "BLUE SKY"), ("tree", "TREE")),
                .. Pairs("plural", "Give the plural of the input noun.", ("cat", "cats"), ("box", "boxes"), ("city", "cities"), ("dog", "dogs"), ("bus", "buses")),
                .. Pairs("antonym", "Give the opposite of the input word.", ("hot", "cold"), ("up", "down"), ("big", "small"), ("fast", "slow"), ("open", "closed")),
            ],
            Eval:
            [
                .. Pairs("upper", "Rewrite the input in uppercase.", ("green apple", "GREEN APPLE"), ("moon", "MOON")),
                .. Pairs("plural", "Give the plural of the input noun.", ("fox", "foxes"), ("baby", "babies")),
                .. Pairs("antonym", "Give the opposite of the input word.", ("early", "late"), ("light", "dark")),
                .. Pairs("reverse", "Reverse the letters of the input word.", ("stop", "pots"), ("live", "evil")),
                .. Pairs("count", "Count the words in the input and answer with a number.", ("a b c", "3"), ("one two", "2")),
            ],
            HeldOutTasks: ["reverse", "count"]),
        Conversations =
        [
            new("name-memory",
            [
                new("Hi, my name is Priya and I am learning to bake bread."),
                new("What is my name?", Expect: ["Priya"]),
                new("Suggest one ingredient I need for my hobby.", Expect: ["flour"]),
            ], Goal: ["flour"]),
            new("trip-plan",
            [
                new("I am travelling to Rome next week. I do not eat meat."),
                new("Which city am I visiting?", Expect: ["Rome"], Forbid: ["Paris", "Milan"]),
                new("Recommend a dish for dinner there that fits my diet.", Expect: ["vegetarian"], Forbid: ["steak", "beef"]),
            ], Goal: ["vegetarian"]),
            new("number-follow",
            [
                new("Remember the number 12."),
                new("Double the number I told you.", Expect: ["24"]),
                new("Now add 1 to that result and answer with the number only.", Expect: ["25"]),
            ], Goal: ["25"]),
        ],
    };

    private static IEnumerable<TaskExample> Pairs(string task, string instruction, params (string In, string Out)[] pairs) =>
        pairs.Select(p => new TaskExample(task, instruction, p.In, p.Out));
}
